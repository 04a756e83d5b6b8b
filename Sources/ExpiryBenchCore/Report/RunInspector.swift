import ExpiryPipeline
import RedisClient

/// Reads a run's state from Redis, for `expiry-bench inspect` (a run kept with `--keep`, or one still going).
package struct RunInspector: Sendable {
    let connection: RedisConnection
    let namespace: String

    package init(connection: RedisConnection, namespace: String) {
        self.connection = connection
        self.namespace = namespace
    }

    /// True if `connection`'s server is a cluster node (inspect reads single servers only).
    package static func isClusterNode(_ connection: RedisConnection) async throws -> Bool {
        try await Preflight.facts(connection, endpoint: connection.endpoint).clusterEnabled
    }

    /// Runs under the namespace, newest first, with their start time (ms since the epoch).
    package func runs() async throws -> [(runID: String, startedMilliseconds: Int64)] {
        var found: [(String, Int64)] = []
        try await connection.scan(matching: RedisConnection.globEscaped(namespace + ":") + "*:meta") { keys in
            for key in keys {
                let runID = String(key.dropFirst(namespace.count + 1).dropLast(":meta".count))
                let started = try await connection.send(RedisCommand("HGET", key, "started_ms")).int ?? 0
                found.append((runID, started))
            }
            return true
        }
        return found.sorted { $0.1 > $1.1 }
    }

    /// A readable description of the run: settings, stream, group, consumers, oldest pending entries,
    /// dead letters, due index and processed count.
    package func describe(_ keyspace: RunKeyspace) async throws -> String {
        var lines: [String] = []
        let reply = try await connection.send(RedisCommand("HGETALL", keyspace.meta))
        let meta = reply.array?.compactMap(\.string) ?? []
        guard !meta.isEmpty else {
            throw RunError(.usage, "no run '\(keyspace.runID)' under namespace '\(keyspace.namespace)' at \(connection.endpoint.addressDescription) (expiry-bench inspect --list shows the runs there)")
        }
        var settings: [String] = []
        for i in stride(from: 0, to: meta.count - 1, by: 2) { settings.append("\(meta[i])=\(meta[i + 1])") }
        lines.append("Run \(keyspace.runID) (keys under \(keyspace.prefix)): \(settings.joined(separator: " "))")

        let layout = RunLayout(run: keyspace, storedTags: reply.fieldMap["shards"] ?? "")
        for keyspace in layout.shards {
        if layout.shards.count > 1 { lines.append("Shard \(keyspace.shardTag ?? "-"):") }
        let replies = try await connection.pipeline([
            RedisCommand("XLEN", keyspace.stream),
            RedisCommand("ZCARD", keyspace.dueIndex),
            RedisCommand("BITCOUNT", keyspace.processed),
            RedisCommand("GET", keyspace.generatorMark),
            RedisCommand("XLEN", keyspace.deadLetters),
            RedisCommand("XINFO", "GROUPS", keyspace.stream),
            RedisCommand("XINFO", "CONSUMERS", keyspace.stream, keyspace.group),
            RedisCommand(["XPENDING", keyspace.stream, keyspace.group, "-", "+", "10"]),
            RedisCommand(["XRANGE", keyspace.deadLetters, "-", "+", "COUNT", "5"]),
        ])
        lines.append("  generated \(replies[3].int ?? 0), processed \(replies[2].int ?? 0), due (not yet published) \(replies[1].int ?? 0), dead letters \(replies[4].int ?? 0)")
        lines.append("  stream \(keyspace.stream): \(replies[0].int ?? 0) entries")
        for group in replies[5].array ?? [] {
            let fields = group.fieldMap
            lines.append("  group \(fields["name"] ?? "?"): \(fields["consumers"] ?? "0") consumers, \(fields["pending"] ?? "0") pending, last delivered \(fields["last-delivered-id"] ?? "?")")
        }
        let consumers = replies[6].array ?? []
        if !consumers.isEmpty {
            lines.append("  consumers (name, pending, idle):")
            for consumer in consumers {
                let fields = consumer.fieldMap
                lines.append("    \((fields["name"] ?? "?").padding(14)) \((fields["pending"] ?? "0").leftPadded(to: 7, with: " "))  \(Format.milliseconds(Double(fields["idle"] ?? "0") ?? 0))")
            }
        }
        let pending = replies[7].array ?? []
        if pending.isEmpty {
            lines.append("  no pending entries")
        } else {
            lines.append("  oldest pending entries (id, consumer, idle, deliveries):")
            for entry in pending {
                let p = entry.array ?? []
                guard p.count == 4 else { continue }
                lines.append("    \(p[0].string ?? "?")  \((p[1].string ?? "?").padding(14)) \(Format.milliseconds(Double(p[2].int ?? 0)))  \(p[3].int ?? 0)")
            }
        }
        for entry in replies[8].array ?? [] {
            if let dead = StreamEntry(entry) { lines.append("  dead letter \(dead.id): key \(dead.index)") }
        }
        }
        return lines.joined(separator: "\n")
    }
}
