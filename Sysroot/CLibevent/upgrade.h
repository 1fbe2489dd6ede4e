// Helpers for the binary upgrade (WeirIO's ProcessSpawn, ListeningSocket's adopt path, the
// hand-over channel): spawning with chosen descriptors, inspecting an inherited socket, and the
// systemd notification datagram. Included by shim.h; only WeirIO uses them.
#ifndef WEIR_CLIBEVENT_UPGRADE_H
#define WEIR_CLIBEVENT_UPGRADE_H
#include <spawn.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <stddef.h>
#include <errno.h>

/// glibc >= 2.34 has it under _GNU_SOURCE / __USE_MISC; declared here because the Swift Glibc
/// module may not export it.
int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *, int);

/// Spawns `path` with `argv` and `envp` so that the child has exactly its standard streams and
/// `fds[0..count-1]` as descriptors 3, 4, ... (in that order, without close-on-exec), and nothing
/// else: every other descriptor of this process, close-on-exec or not, is closed in the child.
/// Signal dispositions and mask are reset (SIGPIPE ignored here would otherwise stay ignored).
/// Returns 0 and the child's pid in `*pid`, or an errno value (ENOENT, EACCES: the exec failed).
/// Precondition: the caller's descriptors in `fds` stay open during the call.
static inline int weir_spawn_passing(const char *path, char *const argv[], char *const envp[],
                                     const int *fds, int count, pid_t *pid) {
    enum { most = 1024 };
    if (count < 0 || count > most) return EINVAL;
    int high[most];
    int made = 0, err = 0;
    // First out of the way: copies numbered above every target slot (3 + count - 1), so that the
    // dup2 of one never overwrites the source of a later one. Close-on-exec: they vanish at exec.
    for (; made < count; made++) {
        high[made] = fcntl(fds[made], F_DUPFD_CLOEXEC, 3 + count);
        if (high[made] < 0) { err = errno; break; }
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    if (!err) err = posix_spawn_file_actions_init(&actions);
    if (!err) {
        for (int i = 0; i < count && !err; i++) err = posix_spawn_file_actions_adddup2(&actions, high[i], 3 + i);
        if (!err) err = posix_spawn_file_actions_addclosefrom_np(&actions, 3 + count);
        if (!err) err = posix_spawnattr_init(&attr);
        if (!err) {
            sigset_t all, none;
            sigfillset(&all);
            sigemptyset(&none);
            posix_spawnattr_setsigdefault(&attr, &all);
            posix_spawnattr_setsigmask(&attr, &none);
            posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
            err = posix_spawn(pid, path, &actions, &attr, argv, envp);
            posix_spawnattr_destroy(&attr);
        }
        posix_spawn_file_actions_destroy(&actions);
    }
    for (int i = 0; i < made; i++) close(high[i]);
    return err;
}

/// The local address of `fd` as text ("1.2.3.4" or "::1") and its port, if `fd` is a listening
/// TCP socket (SO_ACCEPTCONN, SOCK_STREAM). Returns 0, or -1 with errno set (ENOTSOCK,
/// EINVAL when it is a socket but not a listening TCP one).
static inline int weir_listening_address(int fd, char *out, size_t outlen, int *port) {
    int value = 0;
    socklen_t len = sizeof(value);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) < 0) return -1;
    if (value != SOCK_STREAM) { errno = EINVAL; return -1; }
    len = sizeof(value);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) < 0) return -1;
    if (!value) { errno = EINVAL; return -1; }
    struct sockaddr_storage ss;
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    if (weir_format_address((struct sockaddr *)&ss, out, outlen, port) < 0) { errno = EAFNOSUPPORT; return -1; }
    return 0;
}

/// Sets close-on-exec and non-blocking on an inherited descriptor. 0, or -1 with errno set.
static inline int weir_adopt_descriptor(int fd) {
    int fdflags = fcntl(fd, F_GETFD);
    if (fdflags < 0 || fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC) < 0) return -1;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -1;
    return 0;
}

/// A connected pair of close-on-exec, non-blocking Unix stream sockets (the hand-over channel).
static inline int weir_socketpair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds);
}

/// waitpid(pid, WNOHANG): 1 and the raw status when `pid` has ended, 0 while it runs, -1 with errno.
static inline int weir_reap(pid_t pid, int *status) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r < 0) return -1;
    return r == pid ? 1 : 0;
}
static inline int weir_exited(int status) { return WIFEXITED(status); }
static inline int weir_exit_status(int status) { return WEXITSTATUS(status); }
static inline int weir_term_signal(int status) { return WIFSIGNALED(status) ? WTERMSIG(status) : 0; }
static inline int weir_lev_opt_close_on_exec(void) { return LEV_OPT_CLOSE_ON_EXEC; }

#endif
