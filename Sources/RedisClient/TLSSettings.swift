/// How to reach a server over TLS (`rediss://`, or `--tls`), in redis-cli's terms.
///
/// The session lives beneath hiredis, which speaks the protocol over one end of a socket pair (`TLSTunnel`).
package struct TLSSettings: Sendable, Equatable {
    /// PEM file of the CAs to trust (`--cacert`); nil: the system's store.
    package var caFile: String?
    /// Client certificate and its key (`--cert`, `--key`), for servers with `tls-auth-clients yes`.
    package var certificateFile: String?
    package var keyFile: String?
    /// The name sent as SNI and checked against the server's certificate (`--sni`); nil: the URL's host.
    package var serverName: String?
    /// No verification of the server's certificate at all (`--insecure`).
    package var insecure: Bool

    package init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil, insecure: Bool = false) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.insecure = insecure
    }
}
