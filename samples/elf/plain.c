/* A small library with relative relocations (a table of pointers) and an import. */
#include <string.h>
static const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
size_t total(void) {
    size_t n = 0;
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) n += strlen(names[i]);
    return n;
}
