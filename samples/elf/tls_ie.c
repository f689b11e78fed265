/* Initial-exec TLS in a shared library: one relocation against the library's
 * own (local) variable, one against an exported one. */
static __thread int own __attribute__((tls_model("initial-exec")));
__thread int shared_tls __attribute__((tls_model("initial-exec")));
int touch(void) { own++; return ++shared_tls; }
