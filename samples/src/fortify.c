/* Built with -O2 -D_FORTIFY_SOURCE=2: memcpy/sprintf/printf become the __*_chk variants. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	char dst[16] = {0};
	char buf[32];
	size_t n = argc > 1 ? strtoul(argv[1], 0, 10) : 0;
	memcpy(dst, argv[0], n);
	sprintf(buf, "%d", argc);
	printf("%s %s\n", dst, buf);
	return 0;
}
