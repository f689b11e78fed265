int chain_a(void);

int main(void)
{
	return chain_a() != 42;
}
