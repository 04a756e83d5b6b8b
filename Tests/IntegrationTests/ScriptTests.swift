import Foundation
import Testing
@testable import ExpiryBenchCore

/// Each step of the protocol on a real server, called directly: generation (KeyGenerator's MULTI/EXEC write), then
/// the Lua scripts of Sources/ExpiryBenchCore/Pipeline/Scripts.swift through EVALSHA: publish once, claim, commit
/// (fenced, recorded by token).
@Suite(.serialized)
struct ScriptTests {
    /// A server with the scripts loaded, the run's stream and group created, and a connection to use.
    func withRun<T: Sendable>(_ body: (EmbeddedRedis, RedisConnection, RunScripts, RunKeyspace) async throws -> T) async throws -> T {
        try await withRedis { server in
            let connection = try await connect(server, name: "itest-scripts")
            defer { connection.close() }
            let scripts = try await RunScripts.load(on: connection)
            let keyspace = RunKeyspace(namespace: "itest", runID: "scripts\(Int.random(in: 100...999))")
            try await connection.send(RedisCommand(["XGROUP", "CREATE", keyspace.stream, keyspace.group, "0", "MKSTREAM"]))
            return try await body(server, connection, scripts, keyspace)
        }
    }

    func serverMilliseconds(_ c: RedisConnection) async throws -> Int64 {
        let parts = try #require(try await c.send("TIME").array)
        try #require(parts.count == 2)
        return try #require(parts[0].int) * 1000 + (try #require(parts[1].int)) / 1000
    }

    func generator(_ c: RedisConnection, _ k: RunKeyspace, keys: Int = 1000, ttl: Duration = .seconds(60),
                   counters: RunCounters = RunCounters(), offset: Int64 = 0) -> KeyGenerator {
        var configuration = RunConfiguration()
        configuration.keys = keys
        configuration.ttl = ttl
        configuration.timeout = .seconds(5)
        return KeyGenerator(connection: c, keyspace: k, configuration: configuration, counters: counters, serverOffsetMilliseconds: offset)
    }

    /// Generates keys `first ..< first + count` due `ttlMs` from now (server clock); returns the deadline.
    @discardableResult
    func generate(_ c: RedisConnection, _ k: RunKeyspace, ttlMs: Int64, first: Int, count: Int) async throws -> Int64 {
        let deadline = try await serverMilliseconds(c) + ttlMs
        try await generator(c, k).write(first: first, count: count, deadline: deadline)
        return deadline
    }

    func publish(_ c: RedisConnection, _ s: RunScripts, _ k: RunKeyspace, _ indices: [Int]) async throws -> Int {
        let reply = try await c.evalsha(s.publish, keys: [k.dueIndex, k.stream]) { command in
            command.append("t")
            for index in indices { command.append(index) }
        }
        return Int(try #require(reply.int))
    }

    func publishAll(_ c: RedisConnection, _ s: RunScripts, _ k: RunKeyspace, _ batches: [[Int]]) async throws -> Int {
        var total = 0
        for batch in batches { total += try await publish(c, s, k, batch) }
        return total
    }

    func claim(_ c: RedisConnection, _ s: RunScripts, _ k: RunKeyspace, token: String, _ entries: [StreamEntry]) async throws -> [Int64] {
        let reply = try await c.evalsha(s.claim, keys: [k.processed, k.stream]) { command in
            command.append(k.group); command.append(k.lockPrefix); command.append(token); command.append("30000")
            for entry in entries { command.append(entry.id); command.append(entry.index) }
        }
        return try #require(reply.array).map { try #require($0.int) }
    }

    func claimInBatches(_ c: RedisConnection, _ s: RunScripts, _ k: RunKeyspace, token: String, _ entries: [StreamEntry]) async throws -> [Int64] {
        var codes: [Int64] = []
        for start in stride(from: 0, to: entries.count, by: 10) {
            codes += try await claim(c, s, k, token: token, Array(entries[start..<min(start + 10, entries.count)]))
        }
        return codes
    }

    /// The commit script's codes (the leading server time is checked and dropped). The consumers never commit
    /// an empty batch, so neither does this.
    func commit(_ c: RedisConnection, _ s: RunScripts, _ k: RunKeyspace, token: String, _ entries: [StreamEntry]) async throws -> [Int64] {
        if entries.isEmpty { return [] }
        let reply = try await c.evalsha(s.commit, keys: [k.processed, k.stream, k.commitRecord(token)]) { command in
            command.append(k.group); command.append(k.lockPrefix); command.append(token); command.append("60000")
            for entry in entries { command.append(entry.id); command.append(entry.index) }
        }
        let values = try #require(reply.array).map { try #require($0.int) }
        try #require(values.count == entries.count + 1)
        let nowMicros = WallClock.milliseconds() * 1000
        #expect(abs(Int64(values[0]) - Int64(nowMicros)) < 5_000_000, "the first element should be the server time in µs")
        return Array(values.dropFirst())
    }

    func readGroup(_ c: RedisConnection, _ k: RunKeyspace, consumer: String, count: Int) async throws -> [StreamEntry] {
        StreamEntry.fromReadGroup(try await c.send(RedisCommand([
            "XREADGROUP", "GROUP", k.group, consumer, "COUNT", String(count), "STREAMS", k.stream, ">",
        ])))
    }

    func pendingCount(_ c: RedisConnection, _ k: RunKeyspace) async throws -> Int64 {
        try #require(try await c.send("XPENDING", k.stream, k.group).array?.first?.int)
    }

    func int(_ c: RedisConnection, _ words: String...) async throws -> Int64 {
        try #require(try await c.send(RedisCommand(words)).int)
    }

    @Test func generateWritesKeysWithTheirDeadlineAndDueEntriesAndARetryIsANoOp() async throws {
        try await withRun { server, c, _, k in
            let g = try await connect(server, name: "itest-generator")
            defer { g.close() }
            let deadline = try await generate(g, k, ttlMs: 60_000, first: 0, count: 100)
            #expect(try await int(c, "ZCARD", k.dueIndex) == 100)
            #expect(try await int(c, "GET", k.generatorMark) == 100)
            for index in [0, 1, 50, 99] {
                #expect(try await c.send("GET", k.dataKey(index)) == .bulk(String(deadline)))
                #expect(try await int(c, "PEXPIRETIME", k.dataKey(index)) == deadline, "key \(index) does not expire at its deadline")
                let pttl = try await int(c, "PTTL", k.dataKey(index))
                #expect(pttl > 50_000 && pttl <= 60_000, "key \(index) has PTTL \(pttl)")
                #expect(try await c.send("ZSCORE", k.dueIndex, String(index)).int == deadline)
            }
            #expect(try await int(c, "EXISTS", k.dataKey(100)) == 0)

            // The generator's connection breaks after its write went through; the caller retries the same range.
            // The retry must see the high-water mark and write nothing: a key deleted meanwhile stays deleted.
            try await c.send("DEL", k.dataKey(7))
            try await c.send("ZREM", k.dueIndex, "7")
            let generatorID = try #require(try await g.send("CLIENT", "ID").int)
            #expect(try await int(c, "CLIENT", "KILL", "ID", String(generatorID)) == 1)
            try await generator(g, k).write(first: 0, count: 100, deadline: deadline + 1)
            #expect(g.reconnectCount >= 1, "the killed connection was not noticed")
            #expect(try await int(c, "EXISTS", k.dataKey(7)) == 0, "a retried write wrote its range again")
            #expect(try await int(c, "ZCARD", k.dueIndex) == 99)
            #expect(try await c.send("ZSCORE", k.dueIndex, "8").int == deadline)
            #expect(try await int(c, "GET", k.generatorMark) == 100)

            // The next range is written normally.
            try await generate(g, k, ttlMs: 60_000, first: 100, count: 50)
            #expect(try await int(c, "ZCARD", k.dueIndex) == 149)
            #expect(try await int(c, "EXISTS", k.dataKey(149)) == 1)
            #expect(try await int(c, "EXISTS", k.dataKey(150)) == 0)
            #expect(try await int(c, "GET", k.generatorMark) == 150)

            // A short deadline really expires the key; the due entry stays until it is published.
            let short = RunKeyspace(namespace: k.namespace, runID: k.runID + "short")
            try await generate(g, short, ttlMs: 50, first: 0, count: 10)
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await int(c, "EXISTS", short.dataKey(0), short.dataKey(9)) == 0)
            #expect(try await int(c, "ZCARD", short.dueIndex) == 10, "expiry must not remove the due entry")
        }
    }

    @Test func generatorRunWritesEveryKeyDueAtItsTTLOnTheServersClock() async throws {
        try await withRun { _, c, _, k in
            let counters = RunCounters()
            let offset = try await ServerClock.offsetMilliseconds(c)
            let before = try await serverMilliseconds(c)
            try await generator(c, k, keys: 2500, ttl: .seconds(30), counters: counters, offset: offset).run(shouldStop: { false })
            let after = try await serverMilliseconds(c)
            #expect(counters.generated.load(ordering: .relaxed) == 2500)
            #expect(try await int(c, "ZCARD", k.dueIndex) == 2500)
            #expect(try await int(c, "GET", k.generatorMark) == 2500)
            let earliest = try #require(try await c.send("ZRANGE", k.dueIndex, "0", "0", "WITHSCORES").array?.last?.int)
            let latest = try #require(try await c.send("ZRANGE", k.dueIndex, "-1", "-1", "WITHSCORES").array?.last?.int)
            #expect(earliest >= before + 30_000 - 50 && latest <= after + 30_000 + 50, "deadlines \(earliest)...\(latest), server clock \(before)...\(after)")
            #expect(try await int(c, "PEXPIRETIME", k.dataKey(2499)) == latest)
        }
    }

    @Test func concurrentPublishersPublishEachKeyExactlyOnce() async throws {
        try await withRun { server, c, s, k in
            let keys = 2000
            let deadline = try await generate(c, k, ttlMs: 60_000, first: 0, count: keys)
            let other = try await connect(server, name: "itest-publisher-2")
            defer { other.close() }
            let batches = stride(from: 0, to: keys, by: 100).map { Array($0..<min($0 + 100, keys)) }
            // Same indices from both connections, in opposite orders (the second repeats each index in its call).
            async let first = publishAll(c, s, k, batches)
            async let second = publishAll(other, s, k, batches.reversed().map { $0 + $0 })
            let (a, b) = try await (first, second)
            #expect(a + b == keys)
            #expect(try await int(c, "XLEN", k.stream) == Int64(keys))
            #expect(try await int(c, "ZCARD", k.dueIndex) == 0)
            let entries = try await readGroup(c, k, consumer: "reader", count: keys * 2)
            #expect(entries.count == keys)
            #expect(Set(entries.map(\.index)) == Set(0..<keys))
            #expect(entries.allSatisfy { $0.deadline == deadline })
            // Publishing again, or a key that was never generated, publishes nothing.
            #expect(try await publish(c, s, k, [0, 1, 2, keys + 5]) == 0)
            #expect(try await int(c, "XLEN", k.stream) == Int64(keys))
        }
    }

    @Test func claimAndCommitAreExclusiveFencedAndRecorded() async throws {
        try await withRun { server, c, s, k in
            let keys = 200
            try await generate(c, k, ttlMs: 60_000, first: 0, count: keys)
            #expect(try await publish(c, s, k, Array(0..<keys)) == keys)
            let entries = try await readGroup(c, k, consumer: "a", count: keys)
            try #require(entries.count == keys)

            // Two consumers race to claim the same entries, in small batches and opposite orders so that their
            // calls interleave on the server: each key goes to exactly one of them.
            let rival = try await connect(server, name: "itest-claimer-b")
            defer { rival.close() }
            async let codesA = claimInBatches(c, s, k, token: "a:1", entries)
            async let codesB = claimInBatches(rival, s, k, token: "b:1", entries.reversed())
            let (a, bReversed) = try await (codesA, codesB)
            let b = Array(bReversed.reversed())
            try #require(a.count == keys && b.count == keys)
            for i in 0..<keys {
                #expect(Set([a[i], b[i]]) == [1, 2], "key \(entries[i].index): claims \(a[i]) and \(b[i])")
            }
            let wonByA = entries.indices.filter { a[$0] == 1 }.map { entries[$0] }
            let wonByB = entries.indices.filter { b[$0] == 1 }.map { entries[$0] }
            #expect(wonByA.count + wonByB.count == keys)
            for entry in wonByA.prefix(3) { #expect(try await c.send("GET", k.lockPrefix + String(entry.index)) == .bulk("a:1")) }
            for entry in wonByB.prefix(3) { #expect(try await c.send("GET", k.lockPrefix + String(entry.index)) == .bulk("b:1")) }
            // A retried claim by the holder finds the lock its own; the loser is still refused.
            if !wonByA.isEmpty {
                #expect(try await claim(c, s, k, token: "a:1", wonByA) == Array(repeating: 1, count: wonByA.count))
                #expect(try await claim(rival, s, k, token: "b:1", wonByA) == Array(repeating: 2, count: wonByA.count))
            }

            // Commits by the owners: code 1 each; bits set, entries acked, locks released.
            #expect(try await commit(c, s, k, token: "a:1", wonByA) == Array(repeating: 1, count: wonByA.count))
            #expect(try await commit(rival, s, k, token: "b:1", wonByB) == Array(repeating: 1, count: wonByB.count))
            #expect(try await int(c, "BITCOUNT", k.processed) == Int64(keys))
            #expect(try await pendingCount(c, k) == 0)
            #expect(try await scanKeys(c, match: k.lockPrefix + "*").isEmpty)

            // A repeated identical commit (same token: a retry after a lost reply) gets the same answer, and
            // counts nothing twice.
            let (token, owner, won) = wonByA.count >= wonByB.count ? ("a:1", c, wonByA) : ("b:1", rival, wonByB)
            #expect(try await commit(owner, s, k, token: token, won) == Array(repeating: 1, count: won.count))
            #expect(try await int(c, "BITCOUNT", k.processed) == Int64(keys))
            // A commit by a claim that holds none of the locks: fenced, nothing written.
            #expect(try await commit(owner, s, k, token: "z:1", won) == Array(repeating: 0, count: won.count))
            #expect(try await int(c, "BITCOUNT", k.processed) == Int64(keys))

            // A lock holder committing a key someone already processed: a repeat (2), counted, not hidden.
            let done = entries[0]
            try await c.send("SET", k.lockPrefix + String(done.index), "c:1")
            #expect(try await commit(c, s, k, token: "c:1", [done]) == [2])
            #expect(try await int(c, "BITCOUNT", k.processed) == Int64(keys))

            // A duplicate delivery of a processed key: claim answers 0 and acknowledges it at once.
            #expect(try await publish(c, s, k, [done.index]) == 0, "the due index no longer has it")
            try await c.send("XADD", k.stream, "*", "k", String(done.index), "d", String(done.deadline), "s", "t")
            let again = try await readGroup(c, k, consumer: "a", count: 10)
            try #require(again.count == 1)
            #expect(try await pendingCount(c, k) == 1)
            #expect(try await claim(c, s, k, token: "a:2", again) == [0])
            #expect(try await pendingCount(c, k) == 0)
            #expect(try await scanKeys(c, match: k.lockPrefix + "*").isEmpty)
        }
    }

    @Test func commitAfterTheLockLapsedOrMovedIsFenced() async throws {
        try await withRun { _, c, s, k in
            try await generate(c, k, ttlMs: 60_000, first: 0, count: 10)
            #expect(try await publish(c, s, k, Array(0..<10)) == 10)
            let entries = try await readGroup(c, k, consumer: "a", count: 10)
            try #require(entries.count == 10)
            #expect(try await claim(c, s, k, token: "a:1", entries) == Array(repeating: 1, count: 10))

            // One lock lapsed (deleted), another was taken over by a different claim meanwhile.
            let lapsed = entries[3], moved = entries[6]
            try await c.send("DEL", k.lockPrefix + String(lapsed.index))
            try await c.send("SET", k.lockPrefix + String(moved.index), "b:9")
            let codes = try await commit(c, s, k, token: "a:1", entries)
            #expect(codes == (0..<10).map { $0 == 3 || $0 == 6 ? 0 : 1 })
            #expect(try await int(c, "BITCOUNT", k.processed) == 8)
            #expect(try await int(c, "GETBIT", k.processed, String(lapsed.index)) == 0)
            #expect(try await int(c, "GETBIT", k.processed, String(moved.index)) == 0)
            #expect(try await int(c, "GETBIT", k.processed, String(entries[0].index)) == 1)
            // The fenced entries stay pending (to be redone); the other claim's lock is untouched.
            #expect(try await pendingCount(c, k) == 2)
            #expect(try await c.send("GET", k.lockPrefix + String(moved.index)) == .bulk("b:9"))
            // The retry of that commit answers the same, even though nothing changed since.
            #expect(try await commit(c, s, k, token: "a:1", entries) == codes)
            #expect(try await int(c, "BITCOUNT", k.processed) == 8)

            // The new holder commits the moved key; the lapsed one is claimed and committed anew.
            #expect(try await commit(c, s, k, token: "b:9", [moved]) == [1])
            #expect(try await claim(c, s, k, token: "a:2", [lapsed]) == [1])
            #expect(try await commit(c, s, k, token: "a:2", [lapsed]) == [1])
            #expect(try await int(c, "BITCOUNT", k.processed) == 10)
            #expect(try await pendingCount(c, k) == 0)
        }
    }
}
