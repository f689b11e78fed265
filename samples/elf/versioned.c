/* A library with symbol versions: a default and a hidden (non-default) version of
 * the same name, a versioned data object, a TLS variable, and an unversioned local. */
int counter = 1;
__thread int per_thread = 2;

int old_foo(void) { return 1; }
int new_foo(void) { return 2; }
__asm__(".symver old_foo,foo@VERS_1");
__asm__(".symver new_foo,foo@@VERS_2");

int bar(void) { return counter + per_thread; }
static int hidden_helper(void) { return 3; }
int (*helper_ptr)(void) = hidden_helper;
