import RedisClient

/// Removes every key of a run, and nothing else: SCAN MATCH `<prefix>*`, one UNLINK per key, pipelined (a cluster
/// refuses an UNLINK of keys in different slots). In a cluster, call it on every primary.
package enum RunCleanup {
    /// Deletes the run's keys on `connection`'s server; returns how many were removed.
    ///
    /// `gates` go first: the run's meta hash and its shards' streams, whose absence makes every script and lease
    /// renewal of a consumer process still running write nothing (`Scripts` "gate"), so nothing the SCAN has passed
    /// is made again behind it. A gate this server does not hold (another node of a cluster) is skipped.
    /// Throws the first UNLINK the server refused (NOPERM, READONLY, NOREPLICAS...), once every other key has been tried;
    /// `remaining` then says what is left.
    @discardableResult
    package static func removeKeys(of keyspace: RunKeyspace, on connection: RedisConnection, gates: [String] = []) async throws -> Int {
        var removed = 0
        var refused: (key: String, message: String)?
        func unlink(_ names: [String], skippingRedirects: Bool) async throws {
            let replies = try await connection.pipeline(names.map { RedisCommand("UNLINK", $0) })
            for (name, reply) in zip(names, replies) {
                if case .error(let message) = reply {
                    if skippingRedirects, message.hasPrefix("MOVED") || message.hasPrefix("ASK") || message.hasPrefix("CROSSSLOT") { continue }
                    if refused == nil { refused = (name, message) }
                } else {
                    removed += Int(reply.int ?? 0)
                }
            }
        }
        if !gates.isEmpty { try await unlink(gates, skippingRedirects: true) }
        try await connection.scan(matching: RedisConnection.globEscaped(keyspace.prefix) + "*") { names in
            if !names.isEmpty { try await unlink(names, skippingRedirects: false) }
            return true
        }
        if let refused {
            throw RedisError(.server, "UNLINK \(refused.key): \(refused.message)", serverMessage: refused.message)
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

    /// The run's gates (see `removeKeys`): its meta hash and the streams of the shards its meta hash names (a
    /// single server's one shard when the meta hash is gone or names none).
    package static func gates(of keyspace: RunKeyspace, on control: RedisConnection) async throws -> [String] {
        let tags = try await control.send(RedisCommand("HGET", keyspace.meta, "shards")).string ?? ""
        return [keyspace.meta] + RunLayout(run: keyspace, storedTags: tags).shards.map(\.stream)
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

    /// How many keys are under the run's prefix on `connection`'s server, and one of them.
    package static func count(of keyspace: RunKeyspace, on connection: RedisConnection) async throws -> (count: Int, example: String?) {
        var count = 0
        var example: String?
        try await connection.scan(matching: RedisConnection.globEscaped(keyspace.prefix) + "*", count: 10000) { names in
            count += names.count
            if example == nil { example = names.first }
            return true
        }
        return (count, example)
    }
}
