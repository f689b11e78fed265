int tls_bump(void);

int main(void)
{
	return tls_bump() != 1;
}
