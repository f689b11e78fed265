int chain_b(void);

int chain_a(void)
{
	return chain_b() + 1;
}
