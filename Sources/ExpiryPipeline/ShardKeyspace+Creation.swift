import RedisClient

/// A shard's bookkeeping keys, made when the run starts, each with the run's safety TTL from that first write.
extension ShardKeyspace {
    /// The keys the consumers' scripts write (but the locks) and check before they write anything: made here
    /// and never by a script, so that a consumer that outlives its run cannot bring one back without a TTL
    /// (`Scripts` "gate"). The due index and the generator's mark are the generator's, which gives them the TTL.
    package var consumerKeys: [String] { [processed, stream, commitRecords, deadBits, deadLetters, tally] }

    /// One MULTI/EXEC that makes the stream and its group, and the keys the consumers' scripts write, each with
    /// `safetyTTL` (none for a kept run): nothing of the shard exists for a moment without its TTL, even if the
    /// process is killed. The placeholders count for nothing: bit 0 of each bitmap set to 0, a `done` tally of 0, a
    /// commit record under `-` (no consumer has that name), and a dead-letter stream trimmed to no entry.
    package func creationCommands(safetyTTL: Duration?) -> [RedisCommand] {
        var commands = [
            RedisCommand("MULTI"),
            RedisCommand(["XGROUP", "CREATE", stream, group, "0", "MKSTREAM"]),
            RedisCommand("SETBIT", processed, "0", "0"),
            RedisCommand("SETBIT", deadBits, "0", "0"),
            RedisCommand(["XADD", deadLetters, "MAXLEN", "0", "*", "k", "-1"]),
            RedisCommand("HSET", tally, "done", "0"),
            RedisCommand("HSET", commitRecords, "-", ""),
        ]
        if let safetyTTL {
            commands += consumerKeys.map { RedisCommand("PEXPIRE", $0, String(safetyTTL.milliseconds)) }
        }
        commands.append(RedisCommand("EXEC"))
        return commands
    }

    /// Makes the shard's stream, group and consumer keys (`creationCommands`) on `connection`, which must reach the
    /// shard's node. A refused command (in the queue or inside the transaction) is thrown as the server said it.
    package func create(on connection: RedisConnection, safetyTTL: Duration?) async throws {
        let replies = try await connection.pipeline(creationCommands(safetyTTL: safetyTTL))
        let results = replies.last?.array ?? []
        for reply in replies.dropLast() + results {
            if case .error(let message) = reply { throw RedisError(.server, "creating the run's stream: \(message)", serverMessage: message) }
        }
        _ = try replies.last?.unwrapped(for: "EXEC")
    }
}
