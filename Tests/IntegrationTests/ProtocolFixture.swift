import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// A server with the run's scripts loaded and its stream and group created, and thin wrappers that call each
/// step of the protocol exactly as the pipeline does (same keys, same argument layout).
struct ProtocolFixture: Sendable {
    let server: EmbeddedRedis
    let connection: RedisConnection
    let scripts: RunScripts
    /// The run's only shard (a single server, no hash tags).
    let keyspace: ShardKeyspace

    static func with<T: Sendable>(_ body: (ProtocolFixture) async throws -> T) async throws -> T {
        try await withRedis { server in
            let connection = try await connect(server, name: "itest-protocol")
            defer { connection.close() }
            let scripts = try await RunScripts.load(on: connection)
            let keyspace = RunKeyspace(namespace: "itest", runID: "p\(Int.random(in: 1000...9999))").shard(0, tag: nil)
            try await keyspace.create(on: connection, safetyTTL: RunKeyspace.safetyTTL)
            return try await body(ProtocolFixture(server: server, connection: connection, scripts: scripts, keyspace: keyspace))
        }
    }

    func open(_ name: String) async throws -> RedisConnection { try await connect(server, name: name) }

    /// The context the pipeline's components are built from.
    func context(keys: Int = 1000, ttl: Duration = .seconds(60), counters: RunCounters = RunCounters(), offset: Int64 = 0,
                 keyspace: RunKeyspace? = nil) -> PipelineContext {
        var configuration = RunConfiguration()
        configuration.keys = keys
        configuration.ttl = ttl
        configuration.timeout = .seconds(5)
        return PipelineContext(keyspace: keyspace ?? self.keyspace.run, scripts: scripts, settings: configuration.pipelineSettings, counters: counters,
                               latencies: LatencyRecorder(), orphans: OrphanBoard(), recoveries: RecoveryLog(),
                               serverOffsetMilliseconds: offset)
    }

    func serverMilliseconds() async throws -> Int64 {
        let parts = try #require(try await connection.send("TIME").array)
        try #require(parts.count == 2)
        return try #require(parts[0].int) * 1000 + (try #require(parts[1].int)) / 1000
    }

    /// Generates keys `first ..< first + count` due `ttlMs` from now on the server's clock, with the generator's
    /// own write (one MULTI/EXEC); returns the deadline.
    @discardableResult
    func generate(on c: RedisConnection? = nil, keyspace: RunKeyspace? = nil, ttlMs: Int64, first: Int, count: Int) async throws -> Int64 {
        let deadline = try await serverMilliseconds() + ttlMs
        let generation = context(keyspace: keyspace)
        try await KeyGenerator(connection: c ?? connection, context: generation, shard: generation.layout.shards[0]).write(first: first, count: count, deadline: deadline)
        return deadline
    }

    /// The notification path's publish-once script; returns how many keys it published.
    func publish(on c: RedisConnection? = nil, _ indices: [Int]) async throws -> Int {
        let reply = try await (c ?? connection).evalsha(scripts.publish, keys: [keyspace.dueIndex, keyspace.stream]) { command in
            for index in indices { command.append(index) }
        }
        return Int(try #require(reply.int))
    }

    /// The sweeper's script: touches keys due after `cursor` and overdue by more than `graceMs`, and publishes those
    /// overdue by more than `graceMs + rescueMs`.
    func sweep(on c: RedisConnection? = nil, graceMs: Int, rescueMs: Int = 10_000, limit: Int = 2000, after cursor: String = "-inf") async throws -> DeadlineSweeper.Sweep {
        let reply = try await (c ?? connection).evalsha(scripts.sweep, keys: [keyspace.dueIndex, keyspace.stream]) { command in
            command.append(keyspace.dataPrefix)
            command.append(String(graceMs))
            command.append(String(rescueMs))
            command.append(limit)
            command.append(cursor)
        }
        let parts = try #require(reply.array)
        try #require(parts.count == 5)
        return DeadlineSweeper.Sweep(rescued: Int(try #require(parts[0].int)), touched: Int(try #require(parts[1].int)),
                                     expired: Int(try #require(parts[2].int)), cursor: try #require(parts[3].string),
                                     more: try #require(parts[4].int) == 1)
    }

    /// The claim script's codes: 0 already done, 1 claimed, 2 locked by another claim.
    func claim(on c: RedisConnection? = nil, token: String, lockMs: Int = 30_000, _ entries: [StreamEntry]) async throws -> [Int64] {
        let reply = try await (c ?? connection).evalsha(scripts.claim, keys: [keyspace.processed, keyspace.stream, keyspace.deadBits]) { command in
            command.append(keyspace.group); command.append(keyspace.lockPrefix); command.append(token); command.append(String(lockMs))
            for entry in entries { command.append(entry.id); command.append(entry.index) }
        }
        return try #require(reply.array).map { try #require($0.int) }
    }

    /// The commit script's codes (1 first commit, 2 repeat, 0 fenced, 3 handed back, 4 dead-lettered); the leading
    /// server time is checked and dropped. The consumers never settle an empty batch, so neither does this.
    func commit(on c: RedisConnection? = nil, token: String, record: String? = nil, consumer: String = "a", maxDeliveries: Int = 3,
                _ entries: [StreamEntry], succeeded: [Bool]? = nil) async throws -> [Int64] {
        if entries.isEmpty { return [] }
        let outcomes = succeeded ?? entries.map { _ in true }
        let keys = [keyspace.processed, keyspace.stream, keyspace.commitRecords, keyspace.deadBits, keyspace.deadLetters, keyspace.tally]
        let reply = try await (c ?? connection).evalsha(scripts.commit, keys: keys) { command in
            command.append(keyspace.group); command.append(keyspace.lockPrefix); command.append(token); command.append(record ?? token)
            command.append(maxDeliveries); command.append(consumer)
            for (entry, ok) in zip(entries, outcomes) {
                command.append(entry.id); command.append(entry.index); command.append(Int(entry.deadline)); command.append(ok ? 1 : 0)
            }
        }
        let values = try #require(reply.array).map { try #require($0.int) }
        try #require(values.count == entries.count + 1)
        #expect(abs(values[0] - WallClock.milliseconds() * 1000) < 5_000_000, "the first element should be the server time in µs")
        return Array(values.dropFirst())
    }

    /// The settle-and-read script: commits `entries` as `commit` does (same record), then reads up to `count` new
    /// entries for `consumer` and claims them under `nextToken`. Returns the commit codes, the entries read and
    /// their claim codes.
    func settleAndRead(token: String, record: String? = nil, consumer: String = "a", count: Int, nextToken: String,
                       _ entries: [StreamEntry]) async throws -> (codes: [Int64], read: [StreamEntry], claims: [Int64]) {
        let keys = [keyspace.processed, keyspace.stream, keyspace.commitRecords, keyspace.deadBits, keyspace.deadLetters, keyspace.tally]
        let reply = try await connection.evalsha(scripts.settleAndRead, keys: keys) { command in
            command.append(keyspace.group); command.append(keyspace.lockPrefix); command.append(token); command.append(record ?? token)
            command.append(3); command.append(consumer); command.append(count); command.append(nextToken); command.append("60000")
            for entry in entries {
                command.append(entry.id); command.append(entry.index); command.append(Int(entry.deadline)); command.append(1)
            }
        }
        let parts = try #require(reply.array)
        try #require(parts.count == 3)
        let codes = try #require(parts[0].array).dropFirst().map { try #require($0.int) }
        let read = try #require(parts[1].array).compactMap(StreamEntry.init)
        let claims = try #require(parts[2].array).map { try #require($0.int) }
        return (Array(codes), read, claims)
    }

    func readGroup(consumer: String, count: Int) async throws -> [StreamEntry] {
        StreamEntry.fromReadGroup(try await connection.send(RedisCommand([
            "XREADGROUP", "GROUP", keyspace.group, consumer, "COUNT", String(count), "STREAMS", keyspace.stream, ">",
        ])))
    }

    func pending() async throws -> Int64 {
        try #require(try await connection.send("XPENDING", keyspace.stream, keyspace.group).array?.first?.int)
    }

    /// Delivery count of one pending entry (nil when it is not pending).
    func deliveries(of entry: StreamEntry) async throws -> Int64? {
        let reply = try await connection.send(RedisCommand(["XPENDING", keyspace.stream, keyspace.group, entry.id, entry.id, "1"]))
        return reply.array?.first?.array?[3].int
    }

    func int(_ words: String...) async throws -> Int64 {
        try #require(try await connection.send(RedisCommand(words)).int)
    }

    /// The token holding an entry's lock (`<until ms>|<token>`), or nil when it has none.
    func lockHolder(_ entry: StreamEntry) async throws -> String? {
        guard let value = try await connection.send("GET", keyspace.lockPrefix + String(entry.index)).string else { return nil }
        return value.split(separator: "|", maxSplits: 1).last.map(String.init)
    }

    /// Puts `token`'s lock on an entry, held for `ms` more (negative: lapsed that long ago), as a claim would.
    func setLock(_ entry: StreamEntry, token: String, ms: Int64 = 60_000) async throws {
        try await connection.send("SET", keyspace.lockPrefix + String(entry.index), "\(try await serverMilliseconds() + ms)|\(token)")
    }
}
