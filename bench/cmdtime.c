// xdpctl-cmdtime: the wall clock and peak RSS of one command, and nothing of the harness's.
//
//   xdpctl-cmdtime OUT -- COMMAND [ARGS...]
//
// Starts COMMAND (posix_spawn, searching PATH) with stdin and stderr inherited and stdout sent
// to /dev/null, waits for it, and appends "SECONDS MAXRSS_KIB" (seconds with 6 decimals) to
// OUT. The clock runs from just before the spawn to just after the wait returns: the command's
// exec, dynamic loading, run and exit, as a user's shell pays them. A script timing a command
// as `t0=$(date +%s%N); /usr/bin/time ... cmd; t1=$(date +%s%N)` also times two forks of the
// shell, two execs of date and one of GNU time: 15-18 ms around /bin/true where a fork costs
// ~5 ms (a PVM guest), which is most of a 20 ms bar.
//
// Exit code: COMMAND's (a failure is the script's to stop on), 127 if it could not be started,
// 2 on bad usage.
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv)
{
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: xdpctl-cmdtime OUT -- COMMAND [ARGS...]\n");
        return 2;
    }
    FILE* out = fopen(argv[1], "a");
    if (!out) {
        fprintf(stderr, "xdpctl-cmdtime: cannot open '%s': %s\n", argv[1], strerror(errno));
        return 2;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);

    const double t0 = now_s();
    pid_t pid;
    int err = posix_spawnp(&pid, argv[3], &fa, NULL, &argv[3], environ);
    if (err != 0) {
        fprintf(stderr, "xdpctl-cmdtime: cannot start '%s': %s\n", argv[3], strerror(err));
        return 127;
    }
    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "xdpctl-cmdtime: wait for '%s': %s\n", argv[3], strerror(errno));
            return 127;
        }
    }
    const double t1 = now_s();
    fprintf(out, "%.6f %ld\n", t1 - t0, ru.ru_maxrss);
    fclose(out);
    posix_spawn_file_actions_destroy(&fa);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
