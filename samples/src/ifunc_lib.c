/* An exported IFUNC (invisible to musl's lookup) and an internal one (R_X86_64_IRELATIVE). */
static int add_generic(int a, int b)
{
	return a + b;
}

static int (*resolve_add(void))(int, int)
{
	return add_generic;
}

int ifunc_add(int a, int b) __attribute__((ifunc("resolve_add")));
static int hidden_add(int a, int b) __attribute__((ifunc("resolve_add")));

int (*const ifunc_internal)(int, int) = hidden_add;
