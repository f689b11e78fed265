/* Relative relocations packed into DT_RELR; the constructor dereferences them,
 * so a loader that ignores DT_RELR (musl < 1.2.4) crashes in dlopen. */
static int cells[4] = {1, 2, 3, 4};
int *relr_table[4] = {&cells[0], &cells[1], &cells[2], &cells[3]};
int relr_sum;

__attribute__((constructor)) static void relr_init(void)
{
	for (int i = 0; i < 4; i++)
		relr_sum += *relr_table[i];
}
