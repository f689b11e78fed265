/* A statically initialised pointer: R_X86_64_64. */
#include <gnu/libc-version.h>

const char *(*const reloc_version_ptr)(void) = gnu_get_libc_version;
