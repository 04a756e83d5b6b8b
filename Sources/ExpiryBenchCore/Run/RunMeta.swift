import Foundation
import ExpiryPipeline
import RedisClient

/// The run's meta hash: the settings every process of the run follows, its shard tags, its state, and what each
/// consumer process reports when it leaves.
///
/// Fields: `settings` (the consumers' `ConsumerSettings`, as JSON), `consumers` (the driver's), `shards` (the shard tags), `state` (`running`, then `complete` or
/// `stopped`), `member:<process>` (a consumer process that joined: its consumer count), `report:<process>` (what it
/// measured, as JSON, written when it leaves).
package enum RunMeta {
    /// Where a run stands.
    package enum State: String, Sendable {
        case running, complete, stopped
    }

    /// The fields the driver writes when the run starts.
    static func fields(_ configuration: RunConfiguration, layout: RunLayout) -> [String] {
        [
            "settings", configuration.pipelineSettings.consumer.json, "consumers", String(configuration.consumers),
            "shards", layout.storedTags, "state", State.running.rawValue, "started_ms", String(WallClock.milliseconds()),
        ]
    }

    /// A consumer process's pipeline settings: its own, with its consumers' settings taken over from the driver's
    /// (`meta`'s `settings`).
    static func joiningSettings(_ own: RunConfiguration, meta: [String: String]) throws -> PipelineSettings {
        guard let consumer = meta["settings"].flatMap(ConsumerSettings.decode) else {
            throw RunError(.configuration, "run \(own.runID ?? "?") has no readable 'settings' in its meta hash: it was started by another version of expiry-bench")
        }
        var settings = own.pipelineSettings
        settings.consumer = consumer
        return settings
    }

    /// A driver beats (`driver_ms`, server clock) every second; consumer processes leave a run silent this long.
    package static let driverSilence: Duration = .seconds(15)

    /// Adds `amount` to `field` of the meta hash only while the run exists; returns the new value.
    static func add(_ field: String, _ amount: Int, keyspace: RunKeyspace, on connection: RedisConnection) async throws -> Int {
        let script = LoadedScript(script: addIfRunExists, sha: try await connection.load(addIfRunExists))
        let reply = try await connection.evalsha(script, keys: [keyspace.meta]) { command in
            command.append(field)
            command.append(amount)
        }
        guard let value = reply.int, value >= 0 else { throw RunError(.usage, "run \(keyspace.runID) ended before this process could join.") }
        return Int(value)
    }

    static let addIfRunExists = RedisScript(name: "meta-add", source: """
        if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
        return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
        """)

    /// Sets `field` of the meta hash only while the run exists (a process that leaves late must not bring back a
    /// run the driver has removed). Returns false if the run is gone.
    static let setIfRunExists = RedisScript(name: "meta-set", source: """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        return 1
        """)

    /// Sets `field` to `value` in the run's meta hash if the run still exists.
    static func set(_ field: String, _ value: String, keyspace: RunKeyspace, on connection: RedisConnection) async throws -> Bool {
        let script = LoadedScript(script: setIfRunExists, sha: try await connection.load(setIfRunExists))
        let reply = try await connection.evalsha(script, keys: [keyspace.meta]) { command in
            command.append(field)
            command.append(value)
        }
        return reply.int == 1
    }

    /// The meta hash as a dictionary; empty if the run does not exist.
    /// Claims the run id for this driver: the first to create the meta hash owns the run (`HSETNX`, atomic),
    /// and beats at once. Returns false when another process claimed it first: the caller then touches nothing.
    static func claim(_ keyspace: RunKeyspace, owner: String, safetyTTL: Duration?, on connection: RedisConnection) async throws -> Bool {
        // The owner, the first beat and the safety TTL go in together (MULTI): another driver never sees a claimed
        // run without a beat, which would read as a run that ended and was kept, and the hash never exists
        // without its TTL (unless the run is kept).
        let now = String(try await ServerClock.nowMilliseconds(connection))
        // MULTI alone first: were it refused (ACL), the writes pipelined behind it would run outside a transaction
        // and leave a meta hash behind the refusal.
        _ = try await connection.send(RedisCommand("MULTI"))
        var transaction = [
            RedisCommand("HSETNX", keyspace.meta, "owner", owner),
            RedisCommand("HSETNX", keyspace.meta, "driver_ms", now),
        ]
        if let safetyTTL { transaction.append(RedisCommand("PEXPIRE", keyspace.meta, String(safetyTTL.milliseconds))) }
        let queued = transaction.count
        let replies = try await connection.pipeline(transaction + [RedisCommand("EXEC"), RedisCommand("HGET", keyspace.meta, "owner")])
        guard replies.count == queued + 2 else { throw RedisError(.protocolViolation, "HSETNX returned \(replies)") }
        // A refusal (OOM past maxmemory, NOPERM, EXECABORT) is an answer about the server, not a lost claim; a
        // refused EXEC discards the transaction, so nothing was written.
        for reply in replies[0..<queued] { _ = try reply.unwrapped(for: "HSETNX") }
        guard let results = try replies[queued].unwrapped(for: "EXEC").array, results.count == queued else {
            throw RedisError(.protocolViolation, "EXEC returned \(replies[queued])")
        }
        let created = try results[0].unwrapped(for: "HSETNX").int == 1
        guard created || replies[queued + 1].string == owner else { return false }
        if !created { try await connection.send(RedisCommand("HSET", keyspace.meta, "driver_ms", now)) }
        return true
    }

    /// Whether a run's driver is alive: a run still marked running whose driver beat within `driverSilence`.
    package enum Liveness: Sendable, Equatable {
        /// No such run (no meta hash).
        case absent
        /// Still running: its driver beat this long ago.
        case running(beatAgo: Duration)
        /// Ended (complete or stopped) and kept, or its driver fell silent (killed).
        case ended
    }

    /// "its driver beat 420ms ago", or "its driver beat just now" under a millisecond.
    static func lastBeat(_ ago: Duration) -> String {
        ago < .milliseconds(1) ? "its driver beat just now" : "its driver beat \(DurationText.format(.milliseconds(ago.milliseconds))) ago"
    }

    /// Reads whether run `keyspace` exists and whether its driver is still beating (server clock).
    package static func liveness(_ keyspace: RunKeyspace, on connection: RedisConnection) async throws -> Liveness {
        let fields = try await read(keyspace, on: connection)
        if fields.isEmpty { return .absent }
        guard fields["state"].flatMap(State.init) ?? .running == .running, let beat = fields["driver_ms"].flatMap(Int64.init) else {
            return .ended
        }
        let ago = Duration.milliseconds(max(0, try await ServerClock.nowMilliseconds(connection) - beat))
        return ago < driverSilence ? .running(beatAgo: ago) : .ended
    }

    static func read(_ keyspace: RunKeyspace, on connection: RedisConnection) async throws -> [String: String] {
        try await connection.send(RedisCommand("HGETALL", keyspace.meta)).fieldMap
    }
}

/// What a consumer process measured, left in the run's meta hash when it leaves, for the driver's report.
package struct ProcessReport: Sendable, Codable, Equatable {
    package var process: String
    package var consumers: Int
    /// Its counters; `committed` holds the first commits the commit script confirmed to its consumers.
    package var figures = RunFigures()
    package var connectionReconnects = 0
    /// Deadline → commit latencies of its commits: (µs, count) pairs.
    package var latency: [[UInt64]] = []

    package init(process: String, consumers: Int) {
        self.process = process
        self.consumers = consumers
    }

    /// This process's figures.
    init(process: String, consumers: Int, counters: RunCounters, latencies: LatencyRecorder, reconnects: Int) {
        self.init(process: process, consumers: consumers)
        figures = counters.snapshot()
        connectionReconnects = reconnects
        latency = latencies.recordedPairs()
    }

    /// Adds this process's figures to the driver's, but for its first commits: `RunCounters.committed` counts this
    /// process's own, which drive its progress, and the verdict counts the others' apart.
    func merge(into counters: RunCounters, latencies: LatencyRecorder) {
        var others = figures
        others.committed = 0
        counters.add(others)
        latencies.merge(pairs: latency)
    }

    var json: String {
        SnakeCaseJSON.text(of: self)
    }

    static func decode(_ text: String) -> ProcessReport? {
        SnakeCaseJSON.value(ProcessReport.self, from: text)
    }
}
