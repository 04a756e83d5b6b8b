import Synchronization

/// What one consumer has done, readable while it runs.
public final class ConsumerStats: Sendable {
    public let name: String
    public let processed = Atomic<Int>(0)
    public init(name: String) { self.name = name }
}

/// One member of the run's consumer group, on a connection of its own (it blocks in XREADGROUP, so it must
/// never share a connection with anything else).
///
/// Loop: read a batch (XREADGROUP COUNT BLOCK), claim it (one script: skip processed keys, lock the others),
/// do the simulated work (`work` per key, `concurrency` keys at a time, an async sleep), commit it (one script:
/// processed bit + XACK + lock release, fenced by the lock). When entries sit idle past `reclaimIdle` (a consumer
/// failed, or a commit was fenced) it takes them over (XAUTOCLAIM), so nothing stays pending. Three round trips
/// per batch.
public struct StreamConsumer: Sendable {
    let connection: RedisConnection
    let claim: LoadedScript
    let commit: LoadedScript
    let keyspace: RunKeyspace
    let stats: ConsumerStats
    let counters: RunCounters
    let latencies: LatencyRecorder
    let batch: Int
    let work: Duration
    let concurrency: Int
    let lockTTL: String
    /// How long a commit's record is kept: longer than any retry of it can come.
    let recordTTL: String
    let idleEntries: RunFlag
    let reclaimIdle: Duration
    let block: Duration = .milliseconds(100)
    let giveUpAfter: Duration

    public init(connection: RedisConnection, scripts: RunScripts, keyspace: RunKeyspace, stats: ConsumerStats,
                counters: RunCounters, latencies: LatencyRecorder, idleEntries: RunFlag, configuration: RunConfiguration) {
        self.connection = connection
        self.claim = scripts.claim
        self.commit = scripts.commit
        self.keyspace = keyspace
        self.stats = stats
        self.counters = counters
        self.latencies = latencies
        self.batch = configuration.effectiveBatch
        self.work = configuration.work
        self.concurrency = configuration.concurrency
        self.lockTTL = String(configuration.lockTTL.milliseconds)
        self.recordTTL = String((configuration.timeout * 3).milliseconds)
        self.idleEntries = idleEntries
        self.reclaimIdle = configuration.reclaimIdle
        self.giveUpAfter = configuration.timeout
    }

    /// Consumes until `shouldStop` says so; returns after the batch in hand is committed.
    public func run(shouldStop: @Sendable () -> Bool) async throws {
        let clock = ContinuousClock()
        var lastReclaim = clock.now
        var claimSequence = 0
        let read = readCommand()
        while !shouldStop() {
            var entries: [StreamEntry] = []
            do {
                entries = StreamEntry.fromReadGroup(try await connection.pipeline([read], extraWait: block)[0].unwrapped(for: "XREADGROUP"))
                // Reclaiming is a scan of the group's pending entries: only when the reporter has seen entries
                // idle past `reclaimIdle`, and at most once per `reclaimIdle` per consumer.
                if idleEntries.isSet, clock.now - lastReclaim > reclaimIdle {
                    lastReclaim = clock.now
                    entries += try await reclaim()
                }
                if entries.isEmpty { continue }
                claimSequence += 1
                try await process(entries, token: "\(stats.name):\(claimSequence)")
            } catch let error as RedisError where error.breaksConnection {
                // The entries in hand stay pending: they are reclaimed once idle, and the claim and commit
                // scripts make the redo safe. Wait a little before the next call reconnects.
                counters.consumerErrors.add(1, ordering: .relaxed)
                try await Task.sleep(for: .milliseconds(Int.random(in: 50...250)))
            }
        }
    }

    func readCommand() -> RedisCommand {
        RedisCommand(["XREADGROUP", "GROUP", keyspace.group, stats.name, "COUNT", String(batch),
                      "BLOCK", String(block.milliseconds), "STREAMS", keyspace.stream, ">"])
    }

    /// Takes over entries idle longer than `reclaimIdle` from any consumer of the group.
    func reclaim() async throws -> [StreamEntry] {
        let reply = try await connection.send(RedisCommand([
            "XAUTOCLAIM", keyspace.stream, keyspace.group, stats.name, String(reclaimIdle.milliseconds), "0-0", "COUNT", String(batch),
        ]))
        let entries = StreamEntry.fromAutoClaim(reply).entries
        counters.reclaimed.add(entries.count, ordering: .relaxed)
        return entries
    }

    /// Claims, works on and commits one batch.
    func process(_ entries: [StreamEntry], token: String) async throws {
        let claimed = try await claimBatch(entries, token: token)
        if claimed.isEmpty { return }
        if work > .zero { try await simulateWork(keys: claimed.count) }
        try await commitBatch(claimed, token: token)
    }

    func claimBatch(_ entries: [StreamEntry], token: String) async throws -> [StreamEntry] {
        let reply = try await withRetries(giveUpAfter: giveUpAfter) {
            try await connection.evalsha(claim, keys: [keyspace.processed, keyspace.stream]) { command in
                command.append(keyspace.group)
                command.append(keyspace.lockPrefix)
                command.append(token)
                command.append(lockTTL)
                for entry in entries {
                    command.append(entry.id)
                    command.append(entry.index)
                }
            }
        }
        guard let codes = reply.array, codes.count == entries.count else {
            throw RedisError(.protocolViolation, "claim script returned \(reply)")
        }
        var claimed: [StreamEntry] = []
        claimed.reserveCapacity(entries.count)
        var alreadyDone = 0
        var locked = 0
        for (entry, code) in zip(entries, codes) {
            switch code.int {
            case 1: claimed.append(entry)
            case 0: alreadyDone += 1
            default: locked += 1
            }
        }
        if alreadyDone > 0 { counters.duplicateDeliveries.add(alreadyDone, ordering: .relaxed) }
        if locked > 0 { counters.lockSkips.add(locked, ordering: .relaxed) }
        return claimed
    }

    /// The simulated handler: `work` per key, `concurrency` keys at a time. Deadlines are cumulative, so timer
    /// overshoot on one key is not added to the next.
    func simulateWork(keys: Int) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let rounds = (keys + concurrency - 1) / concurrency
        for round in 1...rounds {
            try await clock.sleep(until: start + work * round)
        }
    }

    func commitBatch(_ claimed: [StreamEntry], token: String) async throws {
        let reply = try await withRetries(giveUpAfter: giveUpAfter) {
            try await connection.evalsha(commit, keys: [keyspace.processed, keyspace.stream, keyspace.commitRecord(token)]) { command in
                command.append(keyspace.group)
                command.append(keyspace.lockPrefix)
                command.append(token)
                command.append(recordTTL)
                for entry in claimed {
                    command.append(entry.id)
                    command.append(entry.index)
                }
            }
        }
        guard let codes = reply.array, codes.count == claimed.count + 1, let serverMicroseconds = codes[0].int else {
            throw RedisError(.protocolViolation, "commit script returned \(reply)")
        }
        var latencies: [Int64] = []
        latencies.reserveCapacity(claimed.count)
        var repeats = 0
        var fenced = 0
        for (entry, code) in zip(claimed, codes.dropFirst()) {
            switch code.int {
            case 1: latencies.append(serverMicroseconds - entry.deadline * 1000)
            case 2: repeats += 1
            default: fenced += 1
            }
        }
        if !latencies.isEmpty {
            self.latencies.record(microseconds: latencies)
            counters.committed.add(latencies.count, ordering: .relaxed)
            stats.processed.add(latencies.count, ordering: .relaxed)
        }
        if repeats > 0 { counters.duplicateCommits.add(repeats, ordering: .relaxed) }
        if fenced > 0 { counters.fencedCommits.add(fenced, ordering: .relaxed) }
    }
}

/// The run's scripts, loaded.
public struct RunScripts: Sendable {
    public let publish: LoadedScript
    public let sweep: LoadedScript
    public let claim: LoadedScript
    public let commit: LoadedScript

    /// Loads every script of the protocol on `connection`.
    public static func load(on connection: RedisConnection) async throws -> RunScripts {
        func loaded(_ script: RedisScript) async throws -> LoadedScript {
            LoadedScript(script: script, sha: try await connection.load(script))
        }
        return RunScripts(publish: try await loaded(Scripts.publish), sweep: try await loaded(Scripts.sweep),
                          claim: try await loaded(Scripts.claim), commit: try await loaded(Scripts.commit))
    }
}
