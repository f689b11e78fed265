/* rusage-run: run a command, then write "WALL_NS MAXRSS_KB EXIT_CODE" to OUTFILE.
 *
 *     rusage-run OUTFILE COMMAND [ARG...]
 *
 * Why a separate small program: a child's ru_maxrss counts the memory of the process it was forked
 * from (the kernel keeps the larger of the old and the new image's high-water mark across exec), so
 * a command spawned straight from the benchmark's Python process would report Python's peak. Forked
 * from this launcher, the floor is about 1 MB. run.py compiles it into the cache directory with cc.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUTFILE COMMAND [ARG...]\n", argv[0]);
        return 2;
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        execvp(argv[2], &argv[2]);
        perror(argv[2]);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) < 0) {
        perror("wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long wall_ns = (long long)(end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    FILE *out = fopen(argv[1], "w");
    if (out == NULL) {
        perror(argv[1]);
        return 2;
    }
    fprintf(out, "%lld %ld %d\n", wall_ns, usage.ru_maxrss, code);
    fclose(out);
    return 0;
}
