#include <execinfo.h>
#include <stdio.h>

int main(void)
{
	void *frames[8];
	printf("%d\n", backtrace(frames, 8));
	return 0;
}
