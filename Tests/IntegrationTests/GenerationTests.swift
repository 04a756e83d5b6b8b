import Foundation
import Synchronization
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// Generation on a real server: `KeyGenerator` writes each key with its deadline (PXAT on the server's clock) and
/// its due-index entry in one MULTI/EXEC, and a retry after a lost connection writes nothing twice.
@Suite(.serialized)
struct GenerationTests {
    @Test func writeStoresKeysWithTheirDeadlineAndDueEntries() async throws {
        try await ProtocolFixture.with { f in
            let k = f.keyspace
            let deadline = try await f.generate(ttlMs: 60_000, first: 0, count: 100)
            #expect(try await f.int("ZCARD", k.dueIndex) == 100)
            #expect(try await f.int("GET", k.generatorMark) == 100)
            for index in [0, 1, 50, 99] {
                #expect(try await f.connection.send("GET", k.dataKey(index)) == .bulk(String(deadline)))
                #expect(try await f.int("PEXPIRETIME", k.dataKey(index)) == deadline, "key \(index) does not expire at its deadline")
                #expect(try await f.connection.send("ZSCORE", k.dueIndex, String(index)).int == deadline)
            }
            #expect(try await f.int("EXISTS", k.dataKey(100)) == 0)

            // The next range adds to it and moves the mark.
            try await f.generate(ttlMs: 60_000, first: 100, count: 50)
            #expect(try await f.int("ZCARD", k.dueIndex) == 150)
            #expect(try await f.int("EXISTS", k.dataKey(149)) == 1)
            #expect(try await f.int("GET", k.generatorMark) == 150)

            // A short deadline really expires the key; its due entry stays until it is published.
            let short = RunKeyspace(namespace: k.run.namespace, runID: k.run.runID + "short")
            try await f.generate(keyspace: short, ttlMs: 50, first: 0, count: 10)
            try await Task.sleep(for: .milliseconds(200))
            let shortShard = short.shard(0, tag: nil)
            #expect(try await f.int("EXISTS", shortShard.dataKey(0), shortShard.dataKey(9)) == 0)
            #expect(try await f.int("ZCARD", shortShard.dueIndex) == 10, "expiry must not remove the due entry")
        }
    }

    @Test func retryAfterALostConnectionIsANoOp() async throws {
        try await ProtocolFixture.with { f in
            let k = f.keyspace
            let g = try await f.open("itest-generator")
            defer { g.close() }
            let deadline = try await f.generate(on: g, ttlMs: 60_000, first: 0, count: 100)
            // The key and its entry are consumed meanwhile (published, processed, deleted).
            try await f.connection.send("DEL", k.dataKey(7))
            try await f.connection.send("ZREM", k.dueIndex, "7")
            // The generator's connection is dropped; the same range is written again (as a retry would).
            let generatorID = try #require(try await g.send("CLIENT", "ID").int)
            #expect(try await f.int("CLIENT", "KILL", "ID", String(generatorID)) == 1)
            try await KeyGenerator(connection: g, context: f.context(), shard: f.keyspace).write(first: 0, count: 100, deadline: deadline + 5000)
            #expect(g.reconnectCount >= 1, "the killed connection was not noticed")
            // The retry saw the mark and wrote nothing: the consumed key is not brought back, nothing moved.
            #expect(try await f.int("EXISTS", k.dataKey(7)) == 0, "a retried write generated a consumed key again")
            #expect(try await f.int("ZCARD", k.dueIndex) == 99)
            #expect(try await f.connection.send("ZSCORE", k.dueIndex, "8").int == deadline)
            #expect(try await f.int("PEXPIRETIME", k.dataKey(8)) == deadline)
            #expect(try await f.int("GET", k.generatorMark) == 100)
        }
    }

    @Test func runWritesEveryKeyDueAtItsTTLOnTheServersClock() async throws {
        try await ProtocolFixture.with { f in
            let k = f.keyspace
            let counters = RunCounters()
            let offset = try await ServerClock.offsetMilliseconds(f.connection)
            let before = try await f.serverMilliseconds()
            let generator = KeyGenerator(connection: f.connection, context: f.context(keys: 2500, ttl: .seconds(30), counters: counters, offset: offset), shard: f.keyspace)
            try await generator.run(shouldStop: { false })
            let after = try await f.serverMilliseconds()
            #expect(counters[\.generated] == 2500)
            #expect(try await f.int("ZCARD", k.dueIndex) == 2500)
            #expect(try await f.int("GET", k.generatorMark) == 2500)
            let earliest = try #require(try await f.connection.send("ZRANGE", k.dueIndex, "0", "0", "WITHSCORES").array?.last?.int)
            let latest = try #require(try await f.connection.send("ZRANGE", k.dueIndex, "-1", "-1", "WITHSCORES").array?.last?.int)
            #expect(earliest >= before + 30_000 - 50 && latest <= after + 30_000 + 50,
                    "deadlines \(earliest)...\(latest), server clock \(before)...\(after)")
            #expect(try await f.int("PEXPIRETIME", k.dataKey(2499)) == latest)
        }
    }

    @Test func stopBeforeTheEndLeavesAConsistentPrefix() async throws {
        try await ProtocolFixture.with { f in
            let k = f.keyspace
            let counters = RunCounters()
            let generator = KeyGenerator(connection: f.connection, context: f.context(keys: 10_000, counters: counters), shard: f.keyspace)
            let calls = Counter()
            // Stop after the second batch: exactly the keys counted as generated exist, with their due entries.
            try await generator.run(shouldStop: { calls.increment() > 2 })
            let generated = counters[\.generated]
            #expect(generated > 0 && generated < 10_000)
            #expect(try await f.int("ZCARD", k.dueIndex) == Int64(generated))
            #expect(try await f.int("GET", k.generatorMark) == Int64(generated))
            #expect(try await f.int("EXISTS", k.dataKey(generated - 1)) == 1)
            #expect(try await f.int("EXISTS", k.dataKey(generated)) == 0)
        }
    }
}

final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() -> Int { value.add(1, ordering: .relaxed).newValue }
}
