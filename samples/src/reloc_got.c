/* Taking the address in code: R_X86_64_GLOB_DAT. */
#include <gnu/libc-version.h>

typedef const char *(*version_fn)(void);

version_fn reloc_version_fn(void)
{
	return gnu_get_libc_version;
}
