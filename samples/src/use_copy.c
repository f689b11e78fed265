/* Built -fno-pie -no-pie: reading shared_table gives R_X86_64_COPY. */
extern int shared_table[4];

int main(void)
{
	return shared_table[2] != 3;
}
