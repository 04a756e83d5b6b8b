/// Which server a run talks to, named as it names itself: `Valkey 9.1.2`, not the `redis_version:7.2.4` Valkey
/// also reports for compatibility. The report's JSON `server` {`name`, `version`}.
package struct ServerIdentity: Sendable, Codable, Equatable, CustomStringConvertible {
    /// `Redis` or `Valkey` (or what the server calls itself, capitalised).
    package var name: String
    /// The server's own version.
    package var version: String

    package init(name: String, version: String) {
        self.name = name
        self.version = version
    }

    /// From INFO's `server` section: `server_name` and `valkey_version` where present (Valkey), else Redis and
    /// `redis_version`.
    package init(info field: (String) -> String?) {
        let named = field("server_name").map(Self.capitalised) ?? "Redis"
        let own = field("\(named.lowercased())_version")
        self.init(name: named, version: own ?? field("redis_version") ?? "unknown")
    }

    /// From HELLO's reply map (`server`, `version`).
    package init(hello fields: [String: String]) {
        self.init(name: fields["server"].map(Self.capitalised) ?? "Redis", version: fields["version"] ?? "unknown")
    }

    package var description: String { "\(name) \(version)" }

    static func capitalised(_ name: String) -> String { name.prefix(1).uppercased() + name.dropFirst() }
}
