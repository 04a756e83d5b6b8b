#ifndef EXPIRY_BENCH_TLS_TUNNEL_H
#define EXPIRY_BENCH_TLS_TUNNEL_H

#include <stddef.h>

// A TLS session beneath hiredis (hiredis 0.14 has no TLS): `tls_tunnel_open` connects to host:port over TCP,
// completes a TLS handshake with OpenSSL, and returns one end of a Unix socket pair for `redisConnectFd`. A thread
// of its own relays bytes between the pair and the TLS session until either side closes. Closing the returned
// descriptor (redisFree) ends the thread, the TLS session and the TCP socket.

typedef struct {
    const char *ca_file;      // PEM file of the CAs to trust; NULL: the system's default CAs
    const char *cert_file;    // client certificate (PEM), or NULL
    const char *key_file;     // its private key (PEM), or NULL
    const char *server_name;  // name sent as SNI and checked against the certificate; NULL: the host
    int insecure;             // 1: do not verify the server's certificate at all
} tls_tunnel_options;

// What went wrong, so that the caller can word it (and tell a refused certificate from an unreachable server).
enum {
    TLS_TUNNEL_OK = 0,
    TLS_TUNNEL_CONNECT = 1,   // TCP connect failed or timed out, the session was closed or not answered, or a
                              // local resource ran out (descriptors, threads): worth trying again
    TLS_TUNNEL_HANDSHAKE = 2, // the TLS handshake failed with a protocol error (a port that does not speak TLS)
    TLS_TUNNEL_VERIFY = 3,    // the server's certificate was refused (CA, host name, expiry)
    TLS_TUNNEL_SETUP = 4,     // a local problem: the CA, certificate or key file, out of resources
};

// Returns the descriptor hiredis should use, or -1 with *error_kind set and a one-line reason in `error`.
int tls_tunnel_open(const char *host, int port, const tls_tunnel_options *options, int timeout_ms,
                    int *error_kind, char *error, size_t error_size);

#endif
