/* glibc >= 2.34 implements pthread_atfork in libc_nonshared.a via __register_atfork. */
#include <pthread.h>

static void nop(void)
{
}

int main(void)
{
	return pthread_atfork(nop, nop, nop);
}
