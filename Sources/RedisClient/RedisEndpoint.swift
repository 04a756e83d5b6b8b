/// Where and how to reach a Redis server, parsed from a `redis://` or `unix://` URL.
///
/// `description` never shows the password: it is safe to print and to log.
package struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    package enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
        /// The primary the sentinels name for `master`, found again on every connection (`SentinelGroup`).
        case sentinel(SentinelGroup)
    }

    package var address: Address
    package var username: String?
    package var password: String?
    package var database: Int
    /// TLS settings when the server is reached over TLS (`rediss://`, or `--tls`); nil for plain TCP.
    package var tls: TLSSettings?

    package init(address: Address, username: String? = nil, password: String? = nil, database: Int = 0, tls: TLSSettings? = nil) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// The default, `redis://127.0.0.1:6379`.
    package static let localDefault = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6379))

    /// Parses `redis://[user:password@]host[:port][/db]`, the same with `rediss://` (TLS, verified against the
    /// system's CAs until `tls` says otherwise), or `unix:///path/to/socket[?db=N]`.
    /// Throws a message naming what is wrong; the message never contains the password.
    package init(url: String) throws(EndpointError) {
        if url.hasPrefix("redis-sentinel://") || url.hasPrefix("rediss-sentinel://") {
            try self.init(sentinelURL: url)
            return
        }
        if url.hasPrefix("unix://") {
            let (path, database) = try Self.parseUnix(url.dropFirst("unix://".count))
            self.init(address: .unix(path: path), database: database)
            return
        }
        guard let scheme = ["redis://", "rediss://"].first(where: url.hasPrefix) else {
            throw EndpointError("'\(Self.redact(url))' is not a redis://, rediss://, redis-sentinel:// or unix:// URL")
        }
        let (credentials, rest, database) = try Self.parseAuthority(Substring(url.dropFirst(scheme.count)))
        let (host, port) = try Self.parseHostAndPort(String(rest))
        self.init(address: .tcp(host: host, port: port), username: credentials.username, password: credentials.password, database: database,
                  tls: scheme == "rediss://" ? TLSSettings() : nil)
    }

    /// `redis-sentinel://[user:password@]host[:port][,host[:port]...][/db]#primary` (Lettuce's form; port 26379 by
    /// default; `rediss-sentinel://` for TLS to the sentinels and the primary). The credentials are the primary's.
    private init(sentinelURL url: String) throws(EndpointError) {
        let tls = url.hasPrefix("rediss-sentinel://")
        let rest = Substring(url.dropFirst(tls ? "rediss-sentinel://".count : "redis-sentinel://".count))
        // The name follows the last '#' after the credentials: a '#' inside a password is not one.
        let afterCredentials = rest.lastIndex(of: "@").map { rest.index(after: $0) } ?? rest.startIndex
        guard let hash = rest[afterCredentials...].lastIndex(of: "#"), !rest[rest.index(after: hash)...].isEmpty else {
            throw EndpointError("a redis-sentinel:// URL names its primary after '#', as in redis-sentinel://10.0.0.5:26379,10.0.0.6:26379#mymaster")
        }
        let master = String(rest[rest.index(after: hash)...])
        let (credentials, hosts, database) = try Self.parseAuthority(rest[..<hash])
        var sentinels: [SentinelGroup.Node] = []
        for part in hosts.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw EndpointError("an empty sentinel address in the list") }
            let (host, port) = try Self.parseHostAndPort(String(part), defaultPort: 26379)
            sentinels.append(SentinelGroup.Node(host: host, port: port))
        }
        self.init(address: .sentinel(SentinelGroup(sentinels: sentinels, master: master)), username: credentials.username,
                  password: credentials.password, database: database, tls: tls ? TLSSettings() : nil)
    }

    /// `[user:password@]hosts[/db]`: the credentials, the hosts part and the database.
    private static func parseAuthority(_ text: Substring) throws(EndpointError) -> (credentials: (username: String?, password: String?), hosts: Substring, database: Int) {
        var rest = text
        var credentials: (username: String?, password: String?) = (nil, nil)
        if let at = rest.lastIndex(of: "@") {
            credentials = Self.parseCredentials(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !dbText.isEmpty {
                guard let db = Int(dbText), db >= 0 else { throw EndpointError("database '\(dbText)' is not a number >= 0") }
                database = db
            }
        }
        return (credentials, rest, database)
    }

    /// `/path/to/socket[?db=N]`: the socket's path and the database.
    private static func parseUnix(_ text: Substring) throws(EndpointError) -> (path: String, database: Int) {
        var rest = String(text)
        var database = 0
        if let query = rest.firstIndex(of: "?") {
            let parameters = rest[rest.index(after: query)...]
            rest = String(rest[..<query])
            for pair in parameters.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, parts[0] == "db", let db = Int(parts[1]), db >= 0 else {
                    // Name the parameter only: its value may be a secret.
                    throw EndpointError("unsupported query parameter '\(parts.first ?? "")' in unix URL (only db=N is accepted)")
                }
                database = db
            }
        }
        guard rest.hasPrefix("/") else { throw EndpointError("a unix URL needs an absolute socket path, as in unix:///run/redis.sock") }
        return (rest, database)
    }

    /// `user:password`, `user:` (the password comes from --password-file or REDIS_PASSWORD) or `password` alone
    /// (as redis-cli -u reads it), percent-decoded.
    private static func parseCredentials(_ credentials: Substring) -> (username: String?, password: String?) {
        guard let colon = credentials.firstIndex(of: ":") else {
            return (nil, credentials.isEmpty ? nil : percentDecoded(String(credentials)))
        }
        let user = String(credentials[..<colon])
        let secret = percentDecoded(String(credentials[credentials.index(after: colon)...]))
        return (user.isEmpty ? nil : percentDecoded(user), secret.isEmpty ? nil : secret)
    }

    /// `host`, `host:port`, `[::1]:port` or nothing (127.0.0.1); the port defaults to 6379.
    private static func parseHostAndPort(_ text: String, defaultPort: Int = 6379) throws(EndpointError) -> (host: String, port: Int) {
        var host = text
        var port = defaultPort
        if host.hasPrefix("[") {  // [::1]:6379
            guard let close = host.firstIndex(of: "]") else { throw EndpointError("unclosed '[' in host") }
            let after = host[host.index(after: close)...]
            let inner = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw EndpointError("port '\(after.dropFirst())' is not in 1...65535") }
                port = p
            }
            host = inner
        } else if let colon = host.lastIndex(of: ":") {
            let portText = host[host.index(after: colon)...]
            guard let p = Int(portText), (1...65535).contains(p) else { throw EndpointError("port '\(portText)' is not in 1...65535") }
            port = p
            host = String(host[..<colon])
        }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }

    /// The URL with the password replaced by `***`: safe for output.
    package var description: String {
        switch address {
        case .unix(let path):
            return "unix://\(path)" + (database != 0 ? "?db=\(database)" : "")
        case .tcp(let host, let port):
            return (tls == nil ? "redis://" : "rediss://") + "\(shownCredentials)\(Self.shown(host)):\(port)" + (database != 0 ? "/\(database)" : "")
        case .sentinel(let group):
            return (tls == nil ? "redis-sentinel://" : "rediss-sentinel://") + shownCredentials + group.sentinels.map { "\(Self.shown($0.host)):\($0.port)" }.joined(separator: ",")
                + (database != 0 ? "/\(database)" : "") + "#\(group.master)"
        }
    }

    /// `user:***@`, `:***@` or nothing.
    private var shownCredentials: String {
        if let username { return username + (password != nil ? ":***" : "") + "@" }
        return password != nil ? ":***@" : ""
    }

    private static func shown(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// The same endpoint at one server (a sentinel group's primary once found): credentials, database and TLS kept.
    package func at(host: String, port: Int) -> RedisEndpoint {
        var endpoint = self
        endpoint.address = .tcp(host: host, port: port)
        return endpoint
    }

    /// `host:port` or the socket path, for messages such as "nothing listens at ...".
    package var addressDescription: String {
        switch address {
        case .unix(let path): return path
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .sentinel(let group): return "primary '\(group.master)' of sentinels " + group.sentinels.map { "\(Self.shown($0.host)):\($0.port)" }.joined(separator: ",")
        }
    }

    /// Hides whatever may be credentials in a URL-like string (everything before its last `@`, after the
    /// scheme if there is one), for messages about bad input. Malformed URLs are redacted too.
    package static func redact(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return text }
        if let scheme = text.range(of: "://"), scheme.upperBound <= at {
            return String(text[..<scheme.upperBound]) + "***" + String(text[at...])
        }
        return "***" + String(text[at...])
    }

    static func percentDecoded(_ text: String) -> String {
        guard text.contains("%") else { return text }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            // A '%' not followed by two hex digits is kept as it is, with what follows it.
            let high = iterator.next(), low = high == nil ? nil : iterator.next()
            if let high, let low, let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
                if let high { bytes.append(high) }
                if let low { bytes.append(low) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A `--redis` value that could not be understood.
package struct EndpointError: Error, Sendable, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
