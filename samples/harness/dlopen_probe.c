/* dlopen_probe (lazy|now) [global] PATH: prints "OK" or "ERR <dlerror>", exits 0 or 1.
 * It runs the library's constructors: point it only at muslcheck's own samples. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	int flags, i = 1;
	if (argc < 3 || argc > 4)
		goto usage;
	if (!strcmp(argv[i], "lazy"))
		flags = RTLD_LAZY;
	else if (!strcmp(argv[i], "now"))
		flags = RTLD_NOW;
	else
		goto usage;
	i++;
	if (argc == 4) {
		if (strcmp(argv[i], "global"))
			goto usage;
		flags |= RTLD_GLOBAL;
		i++;
	}
	if (!dlopen(argv[i], flags)) {
		printf("ERR %s\n", dlerror());
		return 1;
	}
	puts("OK");
	return 0;
usage:
	fputs("usage: dlopen_probe (lazy|now) [global] PATH\n", stderr);
	return 2;
}
