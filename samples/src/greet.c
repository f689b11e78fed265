/* A tiny shared library: used as libgreet.so (musl) and libdep.so (glibc). */
int greet_value(void)
{
	return 42;
}
