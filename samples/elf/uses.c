/* An executable that imports from libc and from the versioned library; the
 * weak undefined reference must stay a weak use. */
#include <stdio.h>
extern int bar(void);
extern int foo(void);
extern int counter;
extern void maybe_missing(void) __attribute__((weak));

int main(void) {
    if (maybe_missing) maybe_missing();
    printf("%d %d %d\n", bar(), foo(), counter);
    return 0;
}
