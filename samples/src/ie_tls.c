/* Built -shared -fPIC -ftls-model=initial-exec: R_X86_64_TPOFF64 against its own variable. */
__thread int tls_counter;

int tls_bump(void)
{
	return ++tls_counter;
}
