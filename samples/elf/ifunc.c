/* A library exporting a GNU indirect function (STT_GNU_IFUNC). */
static int impl(void) { return 42; }
static int (*resolve(void))(void) { return impl; }
int answer(void) __attribute__((ifunc("resolve")));
int use_answer(void) { return answer(); }
