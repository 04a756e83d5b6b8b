import RedisClient

/// Removes every key of a run, and nothing else: SCAN MATCH `<prefix>*`, one UNLINK per key, pipelined (a cluster
/// refuses an UNLINK of keys in different slots). In a cluster, call it on every primary.
package enum RunCleanup {
    /// Deletes the run's keys on `connection`'s server; returns how many were removed.
    @discardableResult
    package static func removeKeys(of keyspace: RunKeyspace, on connection: RedisConnection) async throws -> Int {
        var removed = 0
        try await connection.scan(matching: RedisConnection.globEscaped(keyspace.prefix) + "*") { names in
            if !names.isEmpty {
                let replies = try await connection.pipeline(names.map { RedisCommand("UNLINK", $0) })
                removed += replies.reduce(0) { $0 + Int($1.int ?? 0) }
            }
            return true
        }
        return removed
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
