import CHiredis
import CTLSTunnel
#if canImport(Glibc)
import Glibc
#endif

/// Opens a TLS session to a server and hands hiredis the other end of it (see `tls_tunnel.h`).
enum TLSTunnel {
    /// Connects, completes the handshake, checks the session with one PING, and returns a hiredis context on the
    /// session's plain end.
    /// - Throws: `.tls` when the certificate (ours or the server's) was refused or the port does not speak TLS,
    ///   `.io`/`.timeout` when the server could not be reached, `.io` for a local problem (a file, resources).
    static func connect(host: String, port: Int, settings: TLSSettings, timeoutMilliseconds: Int, describing address: String) throws -> UnsafeMutablePointer<redisContext> {
        var kind: Int32 = 0
        var reason = [CChar](repeating: 0, count: 512)
        let fd = withOptions(settings) { options in
            withUnsafePointer(to: options) { tls_tunnel_open(host, Int32(port), $0, Int32(clamping: timeoutMilliseconds), &kind, &reason, reason.count) }
        }
        guard fd >= 0 else {
            let text = String(cString: reason)
            switch Int(kind) {
            case Int(TLS_TUNNEL_VERIFY), Int(TLS_TUNNEL_HANDSHAKE):
                throw RedisError(.tls, "TLS with \(address) failed: \(text)")
            case Int(TLS_TUNNEL_SETUP):
                throw RedisError(.tls, "TLS to \(address) cannot start: \(text)")
            default:
                let code: RedisError.Code = text.contains("timed out") || text.contains("timeout") ? .timeout : .io
                throw RedisError(code, "cannot connect to \(address): \(text)")
            }
        }
        guard let context = redisConnectFd(fd) else {
            close(fd)
            throw RedisError(.io, "cannot allocate a connection to \(address)")
        }
        return context
    }

    /// The settings as C strings, alive for the call.
    private static func withOptions<T>(_ settings: TLSSettings, _ body: (tls_tunnel_options) -> T) -> T {
        withOptionalCString(settings.caFile) { ca in
            withOptionalCString(settings.certificateFile) { certificate in
                withOptionalCString(settings.keyFile) { key in
                    withOptionalCString(settings.serverName) { name in
                        body(tls_tunnel_options(ca_file: ca, cert_file: certificate, key_file: key, server_name: name, insecure: settings.insecure ? 1 : 0))
                    }
                }
            }
        }
    }

    private static func withOptionalCString<T>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> T) -> T {
        guard let text else { return body(nil) }
        return text.withCString { body($0) }
    }
}
