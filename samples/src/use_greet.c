#include <stdio.h>

int greet_value(void);

int main(void)
{
	printf("%d\n", greet_value());
	return 0;
}
