import RedisClient

/// Creates the run's keys: each with its deadline (an absolute expiry on the server's clock) and, in the same
/// atomic step, its entry in the due index.
///
/// One generator writes one shard's keys (a range of indices); a run has one per shard, in parallel.
/// Open loop at the run's `RateSchedule` (batches sent on a fixed schedule, whatever the pipeline does; each shard
/// takes its share of every stage's rate), or as fast as the server takes them without one. Either way it waits while `maxOutstanding` keys are generated but not yet
/// finished, so a slow pipeline cannot fill the server's memory; such waits are counted.
package struct KeyGenerator: Sendable {
    let connection: RedisConnection
    let giveUpAfter: Duration
    let keyspace: ShardKeyspace
    /// The data keys (indices) of this shard.
    let indices: Range<Int>
    var keys: Int { indices.count }
    let ttl: Duration
    /// The run's pace; nil for as fast as possible.
    let schedule: RateSchedule?
    /// The run's keys per key of this shard: the shard's key `n` is the run's key `n × share` in the schedule.
    let share: Double
    let maxOutstanding: Int
    let counters: RunCounters
    /// Where the probe keys written beside the data keys are counted.
    let probes: ExpiryProbes
    /// Server clock minus local clock, in ms: deadlines are on the server's clock.
    let serverOffsetMilliseconds: Int64
    /// The due index's and the mark's TTL, given with every write; nil for a kept run.
    let safetyTTL: Duration?

    /// - Parameters:
    ///   - shard: the shard to write.
    ///   - indices: the shard's data keys; nil for all of them (a single-shard run).
    package init(connection: RedisConnection, context: PipelineContext, shard keyspace: ShardKeyspace, indices: Range<Int>? = nil) {
        let settings = context.settings
        let counters = context.counters
        let indices = indices ?? 0..<settings.generator.keys
        self.serverOffsetMilliseconds = context.serverOffsetMilliseconds
        self.connection = connection
        self.giveUpAfter = settings.timeout
        self.keyspace = keyspace
        self.indices = indices
        self.ttl = settings.generator.ttl
        // The shards share the rate in proportion to their keys.
        self.schedule = settings.generator.schedule
        self.share = Double(max(1, settings.generator.keys)) / Double(max(1, indices.count))
        self.maxOutstanding = settings.generator.maxOutstanding
        self.counters = counters
        self.probes = context.probes
        self.safetyTTL = settings.safetyTTL
    }

    /// Keys per transaction at the shard's key `next`: about 100 transactions a second at the shard's share of
    /// the rate then, between 1 and 1,000 keys.
    func batchSize(at next: Int) -> Int {
        guard let schedule else { return 1000 }
        let shardRate = Double(schedule.rate(atKey: Int(Double(next) * share))) / share
        return max(1, min(1000, Int(shardRate / 100)))
    }

    /// Generates all keys, returning when the last one is written or `shouldStop` says so.
    package func run(shouldStop: @Sendable () -> Bool) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        var next = 0
        let ttlMillisecondsInt = Int64(ttl.milliseconds)
        while next < keys, !shouldStop() {
            // Never more than --max-outstanding at once, or the wait below could never end.
            let count = min(batchSize(at: next), keys - next, maxOutstanding)
            if let schedule {
                // Open loop: each batch is due when the schedule says, whatever happened before it.
                let due = start + .nanoseconds(Int64(schedule.offset(ofKey: Double(next) * share) * 1e9))
                if due > clock.now { try await clock.sleep(until: due) }
                if shouldStop() { break }
            }
            var waited = false
            // Checks of the wait (one a millisecond) that found the consumers, or the keys' expiry, holding it.
            var onConsumers = 0, onExpiry = 0
            while counters[\.generated] - counters.finished + count > maxOutstanding, !shouldStop() {
                waited = true
                if heldBackByConsumers() { onConsumers += 1 } else { onExpiry += 1 }
                try await Task.sleep(for: .milliseconds(1))
            }
            if waited { counters.add(\.generatorWaits, 1) }
            if onConsumers > onExpiry { counters.add(\.generatorWaitsOnConsumers, 1) }
            if shouldStop() { break }
            let first = next
            let deadline = WallClock.milliseconds() + serverOffsetMilliseconds + ttlMillisecondsInt
            let written = try await write(first: first, count: count, deadline: deadline)
            next += count
            counters.update {
                $0.generated(count)
                // Keys whose deadline had passed when Redis wrote them: Valkey raises no event for such a key.
                if let written, written >= deadline { $0.bornExpired += count }
            }
        }
    }

    /// True when more of the keys in flight wait for the consumers (published to the stream, not finished) than
    /// for their expiry (generated, not yet published): the consumers, not Redis's expiry, hold the generator.
    func heldBackByConsumers() -> Bool {
        let figures = counters.snapshot()
        let inFlight = figures.generated - counters.finished
        return inFlight - figures.unexpired > figures.unexpired
    }

    /// Writes the shard's keys `first ..< first + count` in one MULTI/EXEC: each key with an absolute expiry (PXAT) at
    /// `deadline`, their due-index entries, a probe key beside every `ExpiryProbes.every`-th key while fewer than
    /// `ExpiryProbes.maxInFlight` wait for their event (same deadline, in no index: nothing but Redis expires it),
    /// and the generator's high-water mark, the index and the mark with the run's safety TTL. Atomic, and without Lua.
    /// Safe to retry: if the connection fails, the mark tells whether the transaction was applied.
    /// - Returns: the server's time (ms) when the transaction ran (`TIME` inside it); nil when a retry found it
    ///   already applied.
    @discardableResult
    func write(first: Int, count: Int, deadline: Int64) async throws -> Int64? {
        var commands: [RedisCommand] = []
        commands.reserveCapacity(count + count / ExpiryProbes.every + 5)
        commands.append(RedisCommand("MULTI"))
        let deadlineText = String(deadline)
        var probeCount = 0
        // Multiples of `every` among the batch's indices: one probe beside each.
        let (low, high, every) = (indices.lowerBound + first, indices.lowerBound + first + count, ExpiryProbes.every)
        let wanted = (high + every - 1) / every - (low + every - 1) / every
        let probeRoom = wanted == 0 ? 0 : probes.reserve(wanted, deadline: deadline, serverNow: WallClock.milliseconds() + serverOffsetMilliseconds)
        var zadd = RedisCommandBuilder("ZADD", capacity: count * 24)
        zadd.append(keyspace.dueIndex)
        for index in first..<(first + count) {
            var set = RedisCommandBuilder("SET", capacity: 64)
            set.append(keyspace.dataKey(indices.lowerBound + index))
            set.append(deadlineText)
            set.append("PXAT")
            set.append(deadlineText)
            commands.append(set.build())
            zadd.append(deadlineText)
            zadd.append(indices.lowerBound + index)
            if (indices.lowerBound + index) % ExpiryProbes.every == 0, probeCount < probeRoom {
                commands.append(RedisCommand("SET", keyspace.probeKey(deadline: deadline, number: indices.lowerBound + index), "", "PXAT", deadlineText))
                probeCount += 1
            }
        }
        commands.append(zadd.build())
        if let safetyTTL {
            // The due index is made again whenever it empties: its TTL goes with every write (one command a batch).
            let milliseconds = String(safetyTTL.milliseconds)
            commands.append(RedisCommand("PEXPIRE", keyspace.dueIndex, milliseconds))
            commands.append(RedisCommand("SET", keyspace.generatorMark, String(first + count), "PX", milliseconds))
        } else {
            commands.append(RedisCommand("SET", keyspace.generatorMark, String(first + count)))
        }
        commands.append(RedisCommand("TIME"))
        commands.append(RedisCommand("EXEC"))
        do {
            return try await transact(commands, first: first, count: count)
        } catch {
            probes.cancel(probeRoom, deadline: deadline)
            throw error
        }
    }

    /// Runs the generator's MULTI/EXEC `commands` for keys `first ..< first + count`, retried while it fails
    /// transiently; a retry first asks the high-water mark whether the previous attempt went through.
    /// - Returns: the server's time (ms) of a `TIME` that ends the transaction, if it has one and it ran now.
    @discardableResult
    func transact(_ commands: [RedisCommand], first: Int, count: Int) async throws -> Int64? {
        var retry = false
        return try await withRetries(giveUpAfter: giveUpAfter) { () async throws -> Int64? in
            // A retry first asks whether the previous attempt's transaction went through.
            if retry, let mark = try await connection.send(RedisCommand("GET", keyspace.generatorMark)).int, mark >= first + count { return nil }
            retry = true
            let replies = try await connection.pipeline(commands)
            // EXECABORT only says the transaction was discarded: the reason is the first refused command's reply.
            if case .error = replies.last ?? .null,
               case .error(let message) = replies.first(where: { if case .error = $0 { return true } else { return false } }) ?? .null {
                throw RedisError(.server, "generator transaction: \(message)", serverMessage: message)
            }
            return replies.last?.array?.last.flatMap(ServerClock.milliseconds(fromTime:))
        }
    }
}
