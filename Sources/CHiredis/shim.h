#ifndef EXPIRY_BENCH_CHIREDIS_SHIM_H
#define EXPIRY_BENCH_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

// `errstr` is a fixed `char[128]` inside redisContext, which Swift imports as a 128-element tuple.
// Handing out a pointer to its first byte lets Swift read it as a C string.
static inline const char *CHiredis_errstr(const redisContext *c) {
    return c->errstr;
}

// `redisGetReplyFromReader` takes `void **`; this typed wrapper keeps the cast on the C side.
static inline int CHiredis_replyFromReader(redisContext *c, redisReply **reply) {
    return redisGetReplyFromReader(c, (void **)reply);
}

// Waits until the context's socket is readable, at most `timeout_ms` (poll's signature uses a struct
// array and flags that read more plainly here than through Swift's import of <poll.h>).
// Returns 1 when readable, 0 on timeout, -1 on error.
static inline int CHiredis_waitReadable(const redisContext *c, int timeout_ms) {
    struct pollfd pfd;
    pfd.fd = c->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    int rc = poll(&pfd, 1, timeout_ms);
    if (rc > 0) return 1;
    return rc;
}

// `struct timeval` from milliseconds, for redisConnectWithTimeout and redisSetTimeout.
static inline struct timeval CHiredis_timeval(long milliseconds) {
    struct timeval tv;
    tv.tv_sec = milliseconds / 1000;
    tv.tv_usec = (milliseconds % 1000) * 1000;
    return tv;
}

#endif
