// libevent as Weir uses it: the core loop, events, buffers (evbuffer), listeners,
// and small socket helpers. Only WeirIO imports this module.
#ifndef WEIR_CLIBEVENT_SHIM_H
#define WEIR_CLIBEVENT_SHIM_H
// System headers first: libevent's event-config.h defines _GNU_SOURCE, and if it came first the
// C library's types (fd_set) would be declared differently here than in Swift's Glibc module.
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/select.h>
#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include <sys/eventfd.h>
#include <event2/util.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>

/// splice(2) without blocking: moves up to `len` bytes from `in` to `out`, one of which is a pipe.
/// Declared here because Swift's Glibc module does not export the GNU-only splice().
ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len, unsigned int flags);
static inline ssize_t weir_splice(int in, int out, size_t len) {
    return splice(in, NULL, out, NULL, len, 1 /* SPLICE_F_MOVE */ | 2 /* SPLICE_F_NONBLOCK */);
}

/// A non-blocking, close-on-exec pipe (fds[0] reads, fds[1] writes), grown to `size` bytes when
/// the system allows (F_SETPIPE_SZ); returns the pipe's capacity, or -1 (errno set).
static inline int weir_pipe_open(int fds[2], int size) {
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
    (void)fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, size);
    int capacity = fcntl(fds[1], 1032 /* F_GETPIPE_SZ */);
    return capacity > 0 ? capacity : 65536;
}

/// errno of the calling thread (Swift cannot read the thread-local macro directly). Read only by
/// WeirIO's `SystemCall` and `IOError.errno`, right after the failing call.
static inline int weir_errno(void) { return errno; }
/// Sets errno of the calling thread (cleared before library calls that may or may not set it).
static inline void weir_set_errno(int value) { errno = value; }

/// Names the calling thread (at most 15 bytes are kept; `name` must be NUL-terminated). 0 or -1 with errno.
static inline int weir_set_thread_name(const char *name) { return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0); }
/// The calling thread's name into `out` (at least 16 bytes). 0 or -1 with errno.
static inline int weir_thread_name(char out[16]) { return prctl(PR_GET_NAME, (unsigned long)out, 0, 0, 0); }

/// EV_READ | EV_PERSIST etc. are macros; give Swift typed values.
static inline short weir_ev_read(void) { return EV_READ; }
static inline short weir_ev_write(void) { return EV_WRITE; }
static inline short weir_ev_persist(void) { return EV_PERSIST; }
static inline short weir_ev_signal(void) { return EV_SIGNAL; }
static inline short weir_ev_timeout(void) { return EV_TIMEOUT; }
static inline int weir_lev_opt_close_on_free(void) { return LEV_OPT_CLOSE_ON_FREE; }

/// Peer address of an accepted socket as text ("1.2.3.4" or "::1"); writes into `out` (>= 64 bytes).
static inline int weir_format_address(const struct sockaddr *sa, char *out, size_t outlen, int *port) {
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        *port = ntohs(in->sin_port);
        // Dotted quad by hand: glibc's inet_ntop formats IPv4 through sprintf (a cost per connection).
        if (outlen < 16) return -1;
        const unsigned char *b = (const unsigned char *)&in->sin_addr;
        char *p = out;
        for (int i = 0; i < 4; i++) {
            unsigned v = b[i];
            if (v >= 100) { *p++ = (char)('0' + v / 100); v %= 100; *p++ = (char)('0' + v / 10); v %= 10; }
            else if (v >= 10) { *p++ = (char)('0' + v / 10); v %= 10; }
            *p++ = (char)('0' + v);
            if (i < 3) *p++ = '.';
        }
        *p = 0;
        return 0;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        *port = ntohs(in6->sin6_port);
        return inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)outlen) ? 0 : -1;
    }
    out[0] = 0; *port = 0; return -1;
}

/// Fills `ss` for a numeric IPv4/IPv6 host and port; returns the length to pass to bind/connect, or -1.
static inline int weir_make_address(const char *host, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET; in->sin_port = htons((uint16_t)port);
        return (int)sizeof(struct sockaddr_in);
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6; in6->sin6_port = htons((uint16_t)port);
        return (int)sizeof(struct sockaddr_in6);
    }
    return -1;
}

/// Creates a non-blocking, close-on-exec listening socket with SO_REUSEADDR and SO_REUSEPORT
/// (one per worker: the kernel spreads connections). Returns the fd or -1 with errno set.
/// `freebind`: the address need not be local yet (IP_FREEBIND): a peer listens on an address it
/// may take over from another peer before it holds it.
static inline int weir_listen_socket(const struct sockaddr *sa, socklen_t len, int backlog, int freebind) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    if (freebind) {
        if (sa->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
        else setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) { int e = errno; close(fd); errno = e; return -1; }
    if (sa->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, sa, len) < 0 || listen(fd, backlog) < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

/// Local port a socket is bound to (for listeners bound to port 0), or -1.
static inline int weir_local_port(int fd) {
    struct sockaddr_storage ss; socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static inline void weir_set_nodelay(int fd) { int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); }

/// Writes what `buf` holds to the socket `fd` (up to 64 segments per call) and drains what was
/// taken: send for one segment, sendmsg for several (the socket calls, cheaper than the writev of
/// evbuffer_write). Returns the count, or -1 with errno set (EAGAIN when the socket is full).
/// MSG_NOSIGNAL: a peer that is gone is EPIPE, never SIGPIPE.
static inline ssize_t weir_write_from(struct evbuffer *buf, int fd) {
    struct evbuffer_iovec vec[64];
    int n = evbuffer_peek(buf, -1, NULL, vec, 64);
    if (n <= 0) return 0;
    if (n > 64) n = 64;
    ssize_t sent;
    if (n == 1) {
        sent = send(fd, vec[0].iov_base, vec[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = (struct iovec *)vec;   // evbuffer_iovec has iovec's layout on Linux
        msg.msg_iovlen = (size_t)n;
        sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (sent > 0) evbuffer_drain(buf, (size_t)sent);
    return sent;
}

/// Empties `buf` and frees every segment it holds, empty ones too (a plain drain of an empty
/// buffer frees nothing, so a reserved but unused segment would stay). Callbacks see one byte
/// added and everything drained.
static inline void weir_evbuffer_clear(struct evbuffer *buf) {
    evbuffer_add(buf, "", 1);
    evbuffer_drain(buf, evbuffer_get_length(buf));
}

/// Reads up to `max` bytes from `fd` straight into the end of `buf` (one readv into reserved
/// space, no FIONREAD probe and no 4 KiB cap as in evbuffer_read). Returns the count, 0 at end of
/// stream, or -1 with errno set (EAGAIN when nothing is ready).
static inline ssize_t weir_read_into(struct evbuffer *buf, int fd, size_t max) {
    struct evbuffer_iovec vec[2];
    int was_empty = evbuffer_get_length(buf) == 0;
    int n = evbuffer_reserve_space(buf, (ev_ssize_t)max, vec, 2);
    if (n <= 0) { errno = ENOMEM; return -1; }
    struct iovec iov[2];
    size_t room = 0;
    for (int i = 0; i < n; i++) {
        size_t len = vec[i].iov_len;
        if (room + len > max) len = max - room;
        iov[i].iov_base = vec[i].iov_base; iov[i].iov_len = len; room += len;
    }
    // recv for one segment: the socket call skips readv's file-position and iovec-import work.
    ssize_t got = n == 1 ? recv(fd, iov[0].iov_base, iov[0].iov_len, 0) : readv(fd, iov, n);
    if (got <= 0) {
        evbuffer_commit_space(buf, vec, 0);
        if (was_empty) {
            // A read that got nothing into an empty buffer leaves no segment behind: an idle
            // connection (a new one read before its request came) must not pin 32 KiB.
            int saved = errno;
            weir_evbuffer_clear(buf);
            errno = saved;
        }
        return got;
    }
    size_t left = (size_t)got;
    int used = 0;
    for (int i = 0; i < n && left > 0; i++) {
        size_t take = left < iov[i].iov_len ? left : iov[i].iov_len;
        vec[i].iov_len = take; left -= take; used++;
    }
    evbuffer_commit_space(buf, vec, used);
    return got;
}

/// Starts a non-blocking TCP connect. Returns the fd (connected or in progress) or -1 with errno.
/// An interrupted connect (EINTR) goes on in the background like EINPROGRESS: calling connect
/// again would only say EALREADY; completion is seen as writability either way.
static inline int weir_connect(const struct sockaddr *sa, socklen_t len) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS && errno != EINTR) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

/// The pending error of a socket (SO_ERROR), 0 when none.
static inline int weir_socket_error(int fd) {
    int err = 0; socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
    return err;
}

/// An event_base without internal locks (each is used by one thread). Not with epoll's changelist:
/// a socket closed and its number reused within one loop pass would be left unregistered.
static inline struct event_base *weir_event_base_new(void) {
    struct event_config *cfg = event_config_new();
    if (!cfg) return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}



/// A non-blocking, close-on-exec UDP socket bound to `sa` (for peer beacons). Returns the fd or -1 with errno set.
static inline int weir_udp_socket(const struct sockaddr *sa, socklen_t len) {
    int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (sa->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, sa, len) < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

// Binary upgrade: spawning with inherited sockets, the hand-over channel, sd_notify (upgrade.h).
#include "upgrade.h"

#endif
