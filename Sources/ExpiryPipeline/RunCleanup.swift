import RedisClient

/// Removes every key of a run, and nothing else: SCAN MATCH `<prefix>*`, one UNLINK per key, pipelined (a cluster
/// refuses an UNLINK of keys in different slots). In a cluster, call it on every primary.
package enum RunCleanup {
    /// Deletes the run's keys on `connection`'s server; returns how many were removed.
    /// - Throws: `RedisError(.server)` with the server's reply when it refused an UNLINK (a server that refuses
    ///   writes: `NOREPLICAS`, `MISCONF`, `READONLY`), after the first page it refused; `remaining` then says
    ///   what is left.
    @discardableResult
    package static func removeKeys(of keyspace: RunKeyspace, on connection: RedisConnection) async throws -> Int {
        var removed = 0
        try await connection.scan(matching: RedisConnection.globEscaped(keyspace.prefix) + "*") { names in
            if !names.isEmpty {
                let replies = try await connection.pipeline(names.map { RedisCommand("UNLINK", $0) })
                for reply in replies { _ = try reply.unwrapped(for: "UNLINK") }
                removed += replies.reduce(0) { $0 + Int($1.int ?? 0) }
            }
            return true
        }
        return removed
    }

    /// The keys still under the run's prefix on `connection`'s server (SCAN), and how many of them carry no TTL
    /// (PTTL -1: they stay until removed); read only, so it works where writes are refused.
    package static func remaining(of keyspace: RunKeyspace, on connection: RedisConnection) async throws -> (keys: Int, withoutTTL: Int) {
        var (keys, withoutTTL) = (0, 0)
        try await connection.scan(matching: RedisConnection.globEscaped(keyspace.prefix) + "*") { names in
            if !names.isEmpty {
                keys += names.count
                let ttls = try await connection.pipeline(names.map { RedisCommand("PTTL", $0) })
                withoutTTL += ttls.filter { $0.int == -1 }.count
            }
            return true
        }
        return (keys, withoutTTL)
    }

    /// The first key found under the run's prefix, if any: a run only starts on an empty prefix, so that
    /// removing "its" keys can never remove anything it did not write.
    package static func firstKey(of keyspace: RunKeyspace, on connection: RedisConnection) async throws -> String? {
        var first: String?
        try await connection.scan(matching: RedisConnection.globEscaped(keyspace.prefix) + "*", count: 10000) { names in
            first = names.first
            return first == nil
        }
        return first
    }
}
