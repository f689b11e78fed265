/* gnu_get_libc_version is reached only through the PLT (R_X86_64_JUMP_SLOT). */
#include <gnu/libc-version.h>

const char *reloc_version(void)
{
	return gnu_get_libc_version();
}
