int chain_b(void)
{
	return 41;
}
