/// A cluster node's redirect error reply: `MOVED 3999 127.0.0.1:6381` (the slot has a new owner: ask it from now
/// on) or `ASK 3999 127.0.0.1:6381` (the slot is being migrated: ask that node this once, after `ASKING`).
package struct ClusterRedirect: Sendable, Equatable {
    /// Which of the two redirects this is.
    package enum Kind: Sendable, Equatable {
        case moved
        case ask
    }

    package let kind: Kind
    /// The hash slot of the command's keys.
    package let slot: Int
    /// The node to ask. Empty when the server does not know its own address to announce (Redis 7's
    /// `cluster-preferred-endpoint-type unknown-endpoint` sends `MOVED 3999 :6381`): then it is the host that answered.
    package let host: String
    package let port: Int

    package init(kind: Kind, slot: Int, host: String, port: Int) {
        self.kind = kind
        self.slot = slot
        self.host = host
        self.port = port
    }

    /// Parses an error reply's text; nil for any other error (cheap: it looks at the first byte first).
    package static func parse(_ message: String) -> ClusterRedirect? {
        let kind: Kind
        let rest: Substring
        if message.hasPrefix("MOVED ") {
            kind = .moved
            rest = message.dropFirst("MOVED ".count)
        } else if message.hasPrefix("ASK ") {
            kind = .ask
            rest = message.dropFirst("ASK ".count)
        } else {
            return nil
        }
        let parts = rest.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, let slot = Int(parts[0]), (0..<HashSlot.count).contains(slot),
              let colon = parts[1].lastIndex(of: ":"),
              let port = Int(parts[1][parts[1].index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(parts[1][..<colon])
        // An IPv6 address may come bracketed ([::1]:6379) or bare (::1:6379); both mean the same host.
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return ClusterRedirect(kind: kind, slot: slot, host: host, port: port)
    }

    /// The redirect carried by `reply`, if it is a MOVED or ASK error.
    static func of(_ reply: RESPValue) -> ClusterRedirect? {
        guard case .error(let message) = reply else { return nil }
        return parse(message)
    }
}
