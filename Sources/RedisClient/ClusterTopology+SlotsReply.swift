/// One range of hash slots and the primary that serves it, as one entry of a `CLUSTER SLOTS` reply gives it.
package struct ClusterSlotRange: Sendable, Equatable {
    package let slots: ClosedRange<Int>
    /// The primary's host, never empty (an empty or unknown host in the reply is the host that was asked).
    package let host: String
    package let port: Int
    /// The primary's replicas, `host:port` each, in reply order (candidates to ask when the primary is gone).
    package let replicas: [ClusterNodeAddress]

    package init(slots: ClosedRange<Int>, host: String, port: Int, replicas: [ClusterNodeAddress] = []) {
        self.slots = slots
        self.host = host
        self.port = port
        self.replicas = replicas
    }
}

/// A cluster node's TCP address.
package struct ClusterNodeAddress: Sendable, Equatable {
    package let host: String
    package let port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

extension ClusterTopology {
    /// Parses a `CLUSTER SLOTS` reply: an array of `[start, end, [host, port, id, ...], replica...]`.
    ///
    /// A node whose host is empty, `?` or nil (Redis 7 announces no address it does not know) is on `queriedHost`,
    /// the host the reply came from. Ranges come back in reply order.
    /// - Throws: `RedisError(.protocolViolation)` when the reply does not have that shape.
    package static func parseSlots(_ reply: RESPValue, queriedHost: String) throws -> [ClusterSlotRange] {
        guard let entries = reply.array else { throw malformed(reply) }
        var ranges: [ClusterSlotRange] = []
        ranges.reserveCapacity(entries.count)
        for entry in entries {
            guard let parts = entry.array, parts.count >= 3,
                  let start = parts[0].int, let end = parts[1].int,
                  start >= 0, start <= end, end < HashSlot.count,
                  let primary = node(parts[2], queriedHost: queriedHost) else { throw malformed(entry) }
            let replicas = parts.dropFirst(3).compactMap { node($0, queriedHost: queriedHost) }
            ranges.append(ClusterSlotRange(slots: Int(start)...Int(end), host: primary.host, port: primary.port, replicas: replicas))
        }
        return ranges
    }

    /// `[host, port, ...]` → the node's address, or nil when it is not that shape.
    private static func node(_ value: RESPValue, queriedHost: String) -> ClusterNodeAddress? {
        guard let fields = value.array, fields.count >= 2, let port = fields[1].int, (1...65535).contains(port) else { return nil }
        let announced = fields[0].string ?? ""
        let host = announced.isEmpty || announced == "?" ? queriedHost : announced
        return ClusterNodeAddress(host: host, port: Int(port))
    }

    private static func malformed(_ value: RESPValue) -> RedisError {
        RedisError(.protocolViolation, "CLUSTER SLOTS returned an entry of an unexpected shape: \(value)")
    }
}
