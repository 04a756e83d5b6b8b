// The TLS session beneath hiredis: see include/tls_tunnel.h.
#define _GNU_SOURCE
#include "tls_tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

typedef struct {
    SSL_CTX *context;
    SSL *ssl;
    int tcp;    // the socket to the server, carrying TLS
    int local;  // our end of the pair; hiredis holds the other
} tunnel;

static void say(char *error, size_t size, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error, size, format, arguments);
    va_end(arguments);
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Waits for `events` on fd until the deadline. 1: ready, 0: timed out, -1: error.
static int wait_for(int fd, short events, long long deadline) {
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) return 0;
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR) continue;
        return rc > 0 ? 1 : rc;
    }
}

static int connect_tcp(const char *host, int port, long long deadline, char *error, size_t size) {
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, service, &hints, &found);
    if (rc != 0) {
        say(error, size, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    say(error, size, "no address for %s", host);
    for (struct addrinfo *a = found; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        set_nonblocking(fd);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            int ready = wait_for(fd, POLLOUT, deadline);
            int failure = 0;
            socklen_t length = sizeof failure;
            if (ready == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == 0 && failure == 0) break;
            say(error, size, "%s", ready == 0 ? "Connection timed out" : strerror(failure ? failure : errno));
        } else {
            say(error, size, "%s", strerror(errno));
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    if (fd >= 0) {
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    return fd;
}

// OpenSSL's reason for the last failure, as one line.
static void openssl_reason(char *error, size_t size, const char *fallback) {
    unsigned long code = ERR_peek_last_error();
    if (code == 0) {
        say(error, size, "%s", fallback);
    } else {
        const char *reason = ERR_reason_error_string(code);
        say(error, size, "%s", reason ? reason : fallback);
    }
    ERR_clear_error();
}

static SSL_CTX *make_context(const tls_tunnel_options *options, char *error, size_t size) {
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (context == NULL) {
        openssl_reason(error, size, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    char reason[160];
    if (options->insecure) {
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
        int loaded = options->ca_file ? SSL_CTX_load_verify_locations(context, options->ca_file, NULL)
                                      : SSL_CTX_set_default_verify_paths(context);
        if (loaded != 1) {
            openssl_reason(reason, sizeof reason, "unreadable");
            say(error, size, "cannot load the CA certificates from %s: %s", options->ca_file ? options->ca_file : "the system's store", reason);
            SSL_CTX_free(context);
            return NULL;
        }
    }
    if (options->cert_file && SSL_CTX_use_certificate_chain_file(context, options->cert_file) != 1) {
        openssl_reason(reason, sizeof reason, "unreadable");
        say(error, size, "cannot load the client certificate %s: %s", options->cert_file, reason);
        SSL_CTX_free(context);
        return NULL;
    }
    const char *key = options->key_file ? options->key_file : options->cert_file;
    if (options->cert_file && key && SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) != 1) {
        openssl_reason(reason, sizeof reason, "unreadable");
        say(error, size, "cannot load the private key %s: %s", key, reason);
        SSL_CTX_free(context);
        return NULL;
    }
    if (options->cert_file && SSL_CTX_check_private_key(context) != 1) {
        say(error, size, "the private key %s does not match the certificate %s", key, options->cert_file);
        ERR_clear_error();
        SSL_CTX_free(context);
        return NULL;
    }
    return context;
}

static int is_ip_address(const char *name) {
    unsigned char buffer[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, buffer) == 1 || inet_pton(AF_INET6, name, buffer) == 1;
}

// Drives a non-blocking OpenSSL call (handshake, PING, read) to completion or the deadline.
// Returns the call's result > 0, or <= 0 with the SSL error in *failure (0 for a timeout).
static int drive(SSL *ssl, int fd, long long deadline, int (*step)(SSL *, void *), void *argument, int *failure) {
    for (;;) {
        int rc = step(ssl, argument);
        if (rc > 0) return rc;
        int reason = SSL_get_error(ssl, rc);
        short events = reason == SSL_ERROR_WANT_READ ? POLLIN : reason == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (events == 0) {
            *failure = reason;
            return rc;
        }
        if (wait_for(fd, events, deadline) != 1) {
            *failure = 0;
            return -1;
        }
    }
}

static int handshake_step(SSL *ssl, void *unused) { (void)unused; return SSL_connect(ssl); }
static int ping_write_step(SSL *ssl, void *unused) { (void)unused; return SSL_write(ssl, "PING\r\n", 6); }
typedef struct { char text[256]; int length; } line_buffer;
static int ping_read_step(SSL *ssl, void *argument) {
    line_buffer *line = argument;
    for (;;) {
        int n = SSL_read(ssl, line->text + line->length, (int)sizeof line->text - 1 - line->length);
        if (n <= 0) return n;
        line->length += n;
        line->text[line->length] = 0;
        if (strstr(line->text, "\r\n") != NULL || line->length >= (int)sizeof line->text - 1) return line->length;
    }
}

// Words a failed handshake or check: the certificate's verification result when it was refused, else OpenSSL's
// reason, else what the socket did.
static int describe_failure(SSL *ssl, int insecure, int failure, const char *doing, char *error, size_t size) {
    long verified = SSL_get_verify_result(ssl);
    if (!insecure && verified != X509_V_OK) {
        say(error, size, "the server's certificate was refused: %s", X509_verify_cert_error_string(verified));
        ERR_clear_error();
        return TLS_TUNNEL_VERIFY;
    }
    char reason[160];
    if (failure == SSL_ERROR_SSL) {
        openssl_reason(reason, sizeof reason, "protocol error");
        say(error, size, "the TLS %s failed: %s", doing, reason);
        return strstr(reason, "certificate") != NULL ? TLS_TUNNEL_VERIFY : TLS_TUNNEL_HANDSHAKE;
    }
    // A timeout or a closed connection: perhaps not a TLS port, perhaps a server going away; the caller may retry.
    if (failure == 0) {
        say(error, size, "no answer to the TLS %s within the timeout (is it a TLS port?)", doing);
    } else if (failure == SSL_ERROR_ZERO_RETURN || failure == SSL_ERROR_SYSCALL) {
        say(error, size, "the server closed the connection during the TLS %s (is it a TLS port?)", doing);
    } else {
        say(error, size, "the TLS %s failed (OpenSSL error %d)", doing, failure);
    }
    ERR_clear_error();
    return TLS_TUNNEL_CONNECT;
}

static void tunnel_free(tunnel *t) {
    if (t->ssl) SSL_free(t->ssl);
    if (t->context) SSL_CTX_free(t->context);
    if (t->tcp >= 0) close(t->tcp);
    if (t->local >= 0) close(t->local);
    free(t);
}

// Moves bytes both ways until either side closes or fails. Both descriptors are non-blocking; the loop only
// sleeps in poll when nothing moved.
static void *relay(void *argument) {
    tunnel *t = argument;
    char up[16384], down[16384];  // up: hiredis → server; down: server → hiredis
    size_t up_length = 0, up_done = 0, down_length = 0, down_done = 0;
    int read_wants = SSL_ERROR_WANT_READ, write_wants = SSL_ERROR_WANT_WRITE;
    for (;;) {
        int moved = 0;
        if (down_length == 0) {
            int n = SSL_read(t->ssl, down, sizeof down);
            if (n > 0) {
                down_length = (size_t)n;
                down_done = 0;
                moved = 1;
            } else {
                read_wants = SSL_get_error(t->ssl, n);
                if (read_wants != SSL_ERROR_WANT_READ && read_wants != SSL_ERROR_WANT_WRITE) break;
            }
        }
        if (down_length > 0) {
            ssize_t n = send(t->local, down + down_done, down_length - down_done, MSG_NOSIGNAL);
            if (n > 0) {
                down_done += (size_t)n;
                if (down_done == down_length) down_length = 0;
                moved = 1;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                break;
            }
        }
        if (up_length == 0) {
            ssize_t n = recv(t->local, up, sizeof up, 0);
            if (n > 0) {
                up_length = (size_t)n;
                up_done = 0;
                moved = 1;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                break;  // hiredis closed its end: the connection is over
            }
        }
        if (up_length > 0) {
            int n = SSL_write(t->ssl, up + up_done, (int)(up_length - up_done));
            if (n > 0) {
                up_done += (size_t)n;
                if (up_done == up_length) up_length = 0;
                moved = 1;
            } else {
                write_wants = SSL_get_error(t->ssl, n);
                if (write_wants != SSL_ERROR_WANT_READ && write_wants != SSL_ERROR_WANT_WRITE) break;
            }
        }
        if (moved) continue;
        struct pollfd p[2];
        p[0].fd = t->local;
        p[0].events = (short)((up_length == 0 ? POLLIN : 0) | (down_length > 0 ? POLLOUT : 0));
        p[1].fd = t->tcp;
        p[1].events = 0;
        if (down_length == 0) p[1].events |= read_wants == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
        if (up_length > 0) p[1].events |= write_wants == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        p[0].revents = p[1].revents = 0;
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        // Nothing moved and a side is gone (hiredis closed its end, or the socket failed): poll would report it
        // again at once, forever. The connection is over either way.
        if ((p[0].revents & (POLLHUP | POLLERR)) || (p[1].revents & POLLERR)) break;
        if ((p[1].revents & POLLHUP) && !(p[1].revents & POLLIN)) break;
    }
    SSL_shutdown(t->ssl);  // best effort: a close_notify, without waiting for the server's
    ERR_clear_error();
    tunnel_free(t);
    return NULL;
}

// A session closed right after its handshake, before its first reply (see below): told apart from the rest by
// trying once more.
#define TLS_TUNNEL_CLOSED_EARLY 100

static void ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

static int open_once(const char *host, int port, const tls_tunnel_options *options, int timeout_ms,
                     int *error_kind, char *error, size_t error_size);

int tls_tunnel_open(const char *host, int port, const tls_tunnel_options *options, int timeout_ms,
                    int *error_kind, char *error, size_t error_size) {
    // hiredis writes to its end of the pair with write(): once the relay has closed the other end (the server went
    // away), that raises SIGPIPE, which would end the process instead of failing the call.
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ignore_sigpipe);
    int fd = open_once(host, port, options, timeout_ms, error_kind, error, error_size);
    if (fd < 0 && *error_kind == TLS_TUNNEL_CLOSED_EARLY) {
        // Twice in a row is a server that refuses us (a client certificate it wants); once may be a restart.
        fd = open_once(host, port, options, timeout_ms, error_kind, error, error_size);
        if (fd < 0 && *error_kind == TLS_TUNNEL_CLOSED_EARLY) {
            say(error, error_size, "the server closed the TLS session before its first reply, twice: it may require a client certificate");
            *error_kind = TLS_TUNNEL_VERIFY;
        }
    }
    return fd;
}

static int open_once(const char *host, int port, const tls_tunnel_options *options, int timeout_ms,
                     int *error_kind, char *error, size_t error_size) {
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 5000);
    tunnel *t = calloc(1, sizeof *t);
    if (t == NULL) {
        *error_kind = TLS_TUNNEL_SETUP;
        say(error, error_size, "out of memory");
        return -1;
    }
    t->tcp = t->local = -1;
    *error_kind = TLS_TUNNEL_SETUP;
    if ((t->context = make_context(options, error, error_size)) == NULL) goto failed;
    *error_kind = TLS_TUNNEL_CONNECT;
    if ((t->tcp = connect_tcp(host, port, deadline, error, error_size)) < 0) goto failed;

    *error_kind = TLS_TUNNEL_SETUP;
    if ((t->ssl = SSL_new(t->context)) == NULL || SSL_set_fd(t->ssl, t->tcp) != 1) {
        openssl_reason(error, error_size, "cannot create a TLS session");
        goto failed;
    }
    SSL_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    const char *name = options->server_name && options->server_name[0] ? options->server_name : host;
    if (!is_ip_address(name)) SSL_set_tlsext_host_name(t->ssl, name);
    if (!options->insecure) {
        int named = is_ip_address(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name)
                                        : SSL_set1_host(t->ssl, name);
        if (named != 1) {
            say(error, error_size, "cannot check the certificate against the name '%s'", name);
            goto failed;
        }
    }

    int failure = 0;
    if (drive(t->ssl, t->tcp, deadline, handshake_step, NULL, &failure) <= 0) {
        *error_kind = describe_failure(t->ssl, options->insecure, failure, "handshake", error, error_size);
        goto failed;
    }
    // Under TLS 1.3 a server that refuses our (missing) client certificate says so only after the handshake:
    // one PING shows it now, with OpenSSL's reason, rather than as a closed connection at hiredis's first command.
    line_buffer line = {.length = 0};
    if (drive(t->ssl, t->tcp, deadline, ping_write_step, NULL, &failure) <= 0
        || drive(t->ssl, t->tcp, deadline, ping_read_step, &line, &failure) <= 0) {
        *error_kind = describe_failure(t->ssl, options->insecure, failure, "session's first reply", error, error_size);
        // The server's alert may be lost to the reset of its close: a session closed right after the handshake,
        // when we showed no certificate, may be a server that wants one (the caller tries once more to tell).
        if (*error_kind == TLS_TUNNEL_CONNECT && failure != 0 && options->cert_file == NULL) *error_kind = TLS_TUNNEL_CLOSED_EARLY;
        goto failed;
    }

    int pair[2];
    *error_kind = TLS_TUNNEL_CONNECT;  // out of descriptors or threads: not a TLS problem
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        say(error, error_size, "cannot create a socket pair: %s", strerror(errno));
        goto failed;
    }
    t->local = pair[1];
    set_nonblocking(t->local);

    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 256 * 1024);
    // The relay thread takes no signals: SIGPIPE on a closed socket becomes EPIPE, and Ctrl-C stays the run's.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_t thread;
    int started = pthread_create(&thread, &attributes, relay, t);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attributes);
    if (started != 0) {
        close(pair[0]);
        say(error, error_size, "cannot start the TLS relay thread: %s", strerror(started));
        goto failed;
    }
    *error_kind = TLS_TUNNEL_OK;
    error[0] = 0;
    return pair[0];

failed:
    tunnel_free(t);
    return -1;
}
