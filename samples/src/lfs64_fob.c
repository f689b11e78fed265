/* Built with -D_FILE_OFFSET_BITS=64 and no explicit *64 names. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
	struct stat st;
	FILE *f = fopen("/", "r");
	int fd = open("/", O_RDONLY);
	DIR *d = opendir("/");
	if (d) readdir(d);
	lseek(fd, 0, SEEK_SET);
	stat("/", &st);
	posix_fallocate(fd, 0, 1);
	return f != 0;
}
