import RedisClient

/// The commands the tool prints for a user to paste (remove a run's keys, put a setting back): each names the
/// server it must act on, never the password, and says how to give the password when one is needed.
extension RedisEndpoint {
    /// `expiry-bench cleanup --run-id ID --redis URL ...` for this server; `--namespace` when not the default;
    /// `--force` for a run that could not mark itself ended (it reads as running for 15 s after its last beat).
    package func cleanupCommand(runID: String, namespace: String, force: Bool = false) -> String {
        var words = ["expiry-bench", "cleanup", "--run-id", runID]
        if namespace != RunConfiguration().namespace { words += ["--namespace", namespace] }
        words += ["--redis", urlWithoutPassword] + tlsOptions + (force ? ["--force"] : [])
        return words.joined(separator: " ") + (password != nil ? " (with the password given as for the run: --password-file FILE or REDIS_PASSWORD)" : "")
    }

    /// `redis-cli -h HOST -p PORT [--user U] [--tls ...] ARGUMENTS`: `arguments` as typed (quote them yourself).
    /// A password goes in REDISCLI_AUTH, which the line says, never on the command line.
    package func redisCLI(_ arguments: String) -> String {
        var words = ["redis-cli"]
        switch address {
        case .tcp(let host, let port): words += ["-h", host, "-p", String(port)]
        case .unix(let path): words += ["-s", path]
        case .sentinel(let group):
            // The primary moves: the sentinels name it.
            let sentinel = group.sentinels.first.map { "redis-cli -h \($0.host) -p \($0.port) SENTINEL get-master-addr-by-name \(group.master)" } ?? "the sentinels"
            words += ["-h", "PRIMARY-HOST", "-p", "PRIMARY-PORT"]
            return (words + redisCLIOptions + [arguments]).joined(separator: " ") + " (the primary's address: \(sentinel))" + passwordNote
        }
        return (words + redisCLIOptions + [arguments]).joined(separator: " ") + passwordNote
    }

    /// The URL without the password: `user:@` keeps the user and leaves the password to --password-file or
    /// REDIS_PASSWORD, as `--redis` reads it.
    var urlWithoutPassword: String {
        var shown = self
        shown.password = nil
        shown.username = nil
        let url = shown.description
        guard let username, let scheme = url.range(of: "://"), !url.hasPrefix("unix://") else { return url }
        return String(url[..<scheme.upperBound]) + username + ":@" + String(url[scheme.upperBound...])
    }

    /// The TLS options given to reach this server, for a command of this tool.
    private var tlsOptions: [String] {
        guard let tls else { return [] }
        var words: [String] = []
        if let ca = tls.caFile { words += ["--cacert", ca] }
        if let cert = tls.certificateFile { words += ["--cert", cert] }
        if let key = tls.keyFile { words += ["--key", key] }
        if let name = tls.serverName { words += ["--sni", name] }
        if tls.insecure { words.append("--insecure") }
        return words
    }

    /// The same for redis-cli (its TLS flags have the same names), with `--tls` and `--user`.
    private var redisCLIOptions: [String] {
        var words: [String] = []
        if let username { words += ["--user", username] }
        if tls != nil { words.append("--tls") }
        return words + tlsOptions
    }

    private var passwordNote: String {
        password != nil ? " (with the password in REDISCLI_AUTH)" : ""
    }
}
