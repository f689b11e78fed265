#include <error.h>

int main(int argc, char **argv)
{
	error(0, 0, "%s: %d", argv[0], argc);
	return 0;
}
