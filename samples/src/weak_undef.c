#include <stdio.h>

extern int muslcheck_absent(void) __attribute__((weak));

int main(void)
{
	if (muslcheck_absent)
		return muslcheck_absent();
	puts("absent");
	return 0;
}
