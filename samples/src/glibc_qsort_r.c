#define _GNU_SOURCE
#include <stdlib.h>

static int cmp(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	return *(const int *)a - *(const int *)b;
}

int main(void)
{
	int v[3] = {3, 1, 2};
	qsort_r(v, 3, sizeof v[0], cmp, 0);
	return v[0];
}
