/* Built with -D_LARGEFILE64_SOURCE: explicit LFS64 names. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
	struct stat64 st;
	struct dirent64 ent, *res;
	FILE *f = fopen64("/", "r");
	DIR *d = opendir("/");
	if (d) readdir64_r(d, &ent, &res);
	lseek64(0, 0, SEEK_SET);
	stat64("/", &st);
	posix_fallocate64(0, 0, 1);
	return f != 0;
}
