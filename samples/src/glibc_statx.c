#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>

int main(void)
{
	struct statx stx;
	return statx(AT_FDCWD, "/", 0, STATX_SIZE, &stx);
}
