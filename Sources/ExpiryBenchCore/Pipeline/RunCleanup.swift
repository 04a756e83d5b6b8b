import RedisClient

/// Removes every key of a run, and nothing else: SCAN MATCH `<prefix>*`, one UNLINK per key, pipelined (a cluster
/// refuses an UNLINK of keys in different slots). In a cluster, call it on every primary.
package enum RunCleanup {
    /// Deletes the run's keys on `connection`'s server; returns how many were removed.
    @discardableResult
    package static func removeKeys(of keyspace: RunKeyspace, on connection: RedisConnection) async throws -> Int {
        var cursor = "0"
        var removed = 0
        let pattern = globEscaped(keyspace.prefix) + "*"
        repeat {
            let reply = try await connection.send(RedisCommand(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                throw RedisError(.protocolViolation, "SCAN returned \(reply)")
            }
            cursor = next
            let names = keys.compactMap(\.string)
            if !names.isEmpty {
                let replies = try await connection.pipeline(names.map { RedisCommand("UNLINK", $0) })
                removed += replies.reduce(0) { $0 + Int($1.int ?? 0) }
            }
        } while cursor != "0"
        return removed
    }

    /// The first key found under the run's prefix, if any: a run only starts on an empty prefix, so that
    /// removing "its" keys can never remove anything it did not write.
    package static func firstKey(of keyspace: RunKeyspace, on connection: RedisConnection) async throws -> String? {
        var cursor = "0"
        let pattern = globEscaped(keyspace.prefix) + "*"
        repeat {
            let reply = try await connection.send(RedisCommand(["SCAN", cursor, "MATCH", pattern, "COUNT", "10000"]))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                throw RedisError(.protocolViolation, "SCAN returned \(reply)")
            }
            if let key = keys.first?.string { return key }
            cursor = next
        } while cursor != "0"
        return nil
    }

    /// Escapes glob characters so that a prefix matches only itself in SCAN MATCH.
    static func globEscaped(_ text: String) -> String {
        var out = ""
        for ch in text {
            if "*?[]\\".contains(ch) { out.append("\\") }
            out.append(ch)
        }
        return out
    }
}
