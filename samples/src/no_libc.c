/* Linked -nostdlib: no DT_NEEDED names libc, yet it calls strlen. */
#include <string.h>

size_t no_libc_len(const char *s)
{
	return strlen(s);
}
