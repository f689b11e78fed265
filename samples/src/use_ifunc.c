int ifunc_add(int a, int b);

int main(void)
{
	return ifunc_add(1, 2) != 3;
}
