import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// The Lua scripts of Sources/ExpiryBenchCore/Pipeline/Scripts.swift, called directly through EVALSHA on a real
/// server: publish once (notification path and sweeper), claim, commit (fenced, recorded, redelivery, dead letter).
@Suite(.serialized)
struct ScriptTests {
    @Test func concurrentPublishersPublishEachKeyExactlyOnce() async throws {
        try await ProtocolFixture.with { f in
            let keys = 2000
            let deadline = try await f.generate(ttlMs: 60_000, first: 0, count: keys)
            let other = try await f.open("itest-publisher-2")
            defer { other.close() }
            let batches = stride(from: 0, to: keys, by: 100).map { Array($0..<min($0 + 100, keys)) }
            // The same indices from two connections, in opposite orders (the second names each index twice per call).
            async let first = publishAll(f, on: f.connection, batches)
            async let second = publishAll(f, on: other, batches.reversed().map { $0 + $0 })
            let (a, b) = try await (first, second)
            #expect(a + b == keys)
            #expect(try await f.int("XLEN", f.keyspace.stream) == Int64(keys))
            #expect(try await f.int("ZCARD", f.keyspace.dueIndex) == 0)
            let entries = try await f.readGroup(consumer: "reader", count: keys * 2)
            #expect(entries.count == keys)
            #expect(Set(entries.map(\.index)) == Set(0..<keys))
            #expect(entries.allSatisfy { $0.deadline == deadline })
            // Publishing again, or a key that was never generated, publishes nothing.
            #expect(try await f.publish([0, 1, 2, keys + 5]) == 0)
            #expect(try await f.int("XLEN", f.keyspace.stream) == Int64(keys))
        }
    }

    func publishAll(_ f: ProtocolFixture, on c: RedisConnection, _ batches: [[Int]]) async throws -> Int {
        var total = 0
        for batch in batches { total += try await f.publish(on: c, batch) }
        return total
    }

    /// The sweeper makes Redis expire overdue keys (a touch), so Redis raises their events; it publishes nothing
    /// itself until the rescue window has passed, and then only what the notification path has not published.
    @Test func sweeperTouchesOverdueKeysThenRescuesOnlyWhatNoEventPublished() async throws {
        try await ProtocolFixture.with { f in
            let k = f.keyspace
            try await f.generate(ttlMs: 60_000, first: 0, count: 50)       // not due for a minute
            try await f.generate(ttlMs: 300, first: 50, count: 500)        // overdue shortly
            try await f.generate(ttlMs: 301, first: 550, count: 500)       // the same, one deadline later
            let early = try await f.sweep(graceMs: 50)
            #expect(early.touched == 0 && early.rescued == 0, "nothing is past its deadline plus grace yet")
            try await Task.sleep(for: .milliseconds(600))

            // The touch: every overdue key is gone afterwards, none published, none removed from the due index.
            // A page of 600 stops before the second deadline's keys, and the next sweep takes them from the cursor.
            let touch = try await f.sweep(graceMs: 50, limit: 600)
            #expect(touch.touched == 500 && touch.rescued == 0)
            #expect(touch.more, "a full page says more keys are due now")
            let rest = try await f.sweep(graceMs: 50, limit: 600, after: touch.cursor)
            #expect(rest.touched == 500 && rest.rescued == 0, "the cursor goes on after the first deadline (\(touch.cursor))")
            #expect(!rest.more)
            #expect(touch.expired + rest.expired <= 1000)
            #expect(try await f.int("EXISTS", k.dataKey(50), k.dataKey(1049)) == 0)
            #expect(try await f.int("EXISTS", k.dataKey(0), k.dataKey(49)) == 2, "keys not yet due are untouched")
            #expect(try await f.int("XLEN", k.stream) == 0)
            #expect(try await f.int("ZCARD", k.dueIndex) == 1050)
            let again = try await f.sweep(graceMs: 50, after: rest.cursor)
            #expect(again.touched == 0, "a key is touched once")
            // A full page of one deadline takes all of that deadline's keys.
            #expect(try await f.sweep(graceMs: 50, limit: 100).touched == 500)

            // The rescue, racing the notification path over the same keys: each key is published once.
            let other = try await f.open("itest-bridge")
            defer { other.close() }
            async let rescued = rescueUntilEmpty(f)
            async let notified = publishAll(f, on: other, stride(from: 50, to: 1050, by: 50).map { Array($0..<$0 + 50) })
            let (r, n) = try await (rescued, notified)
            #expect(r + n == 1000)
            #expect(try await f.int("XLEN", k.stream) == 1000)
            #expect(try await f.int("ZCARD", k.dueIndex) == 50, "only the keys not yet due remain in the index")
            let entries = try await f.readGroup(consumer: "reader", count: 5000)
            #expect(Set(entries.map(\.index)) == Set(50..<1050))
            #expect(try await f.sweep(graceMs: 50, rescueMs: 1).rescued == 0)
        }
    }

    func rescueUntilEmpty(_ f: ProtocolFixture) async throws -> Int {
        var total = 0
        while true {
            let rescued = try await f.sweep(graceMs: 50, rescueMs: 1, limit: 100).rescued
            total += rescued
            if rescued == 0 { return total }
        }
    }

    /// A touched key's expired event comes at once, and the touch's count of keys it expired is exact.
    @Test func touchedKeysRaiseTheirExpiredEvents() async throws {
        try await ProtocolFixture.with { f in
            try await f.connection.send("CONFIG", "SET", "notify-keyspace-events", "Ex")
            let layout = RunLayout(run: f.keyspace.run, tags: [nil])
            let events = try await RedisSubscription<Int>.subscribe(
                to: ExpirationBridge.channel(database: 0), endpoint: f.server.endpoint, name: "itest-events", timeout: .seconds(5)
            ) { key in layout.locate(dataKey: key)?.index }
            defer { events.stop() }
            // Keys with a TTL that Redis's own cycle is slow to reach: 20,000 live ones beside them.
            try await f.connection.pipeline((0..<20).map { batch in
                RedisCommand(["MSET"] + (0..<1000).flatMap { ["itest-live:\(batch * 1000 + $0)", "x"] })
            } + (0..<20_000).map { RedisCommand("PEXPIRE", "itest-live:\($0)", "3600000") })
            try await f.generate(ttlMs: 100, first: 0, count: 500)
            try await Task.sleep(for: .milliseconds(200))
            let sweep = try await f.sweep(graceMs: 50)
            #expect(sweep.touched == 500)
            #expect(sweep.expired > 0, "with 20,000 live TTL keys Redis's own cycle should not have reached all 500 in 150 ms")
            var heard = Set<Int>()
            let until = ContinuousClock.now + .seconds(5)
            while heard.count < 500, ContinuousClock.now < until {
                if let batch = await events.messages.take(upTo: 1000) { heard.formUnion(batch) }
            }
            #expect(heard == Set(0..<500), "every touched key's expired event came")
            #expect(try await f.int("ZCARD", f.keyspace.dueIndex) == 500, "the touch publishes nothing itself")
        }
    }

    @Test func racingClaimsLockEachKeyForExactlyOneConsumer() async throws {
        try await ProtocolFixture.with { f in
            let keys = 200
            try await f.generate(ttlMs: 60_000, first: 0, count: keys)
            #expect(try await f.publish(Array(0..<keys)) == keys)
            let entries = try await f.readGroup(consumer: "a", count: keys)
            try #require(entries.count == keys)
            let rival = try await f.open("itest-claimer-b")
            defer { rival.close() }
            // Small batches in opposite orders, so that the two claimers' calls interleave on the server.
            async let codesA = claimInBatches(f, on: f.connection, token: "a:1", entries)
            async let codesB = claimInBatches(f, on: rival, token: "b:1", entries.reversed())
            let (a, bReversed) = try await (codesA, codesB)
            let b = Array(bReversed.reversed())
            try #require(a.count == keys && b.count == keys)
            for i in 0..<keys {
                #expect(Set([a[i], b[i]]) == [1, 2], "key \(entries[i].index): claims answered \(a[i]) and \(b[i])")
            }
            let wonByA = entries.indices.filter { a[$0] == 1 }.map { entries[$0] }
            let wonByB = entries.indices.filter { b[$0] == 1 }.map { entries[$0] }
            for entry in wonByA.prefix(3) { #expect(try await f.lockHolder(entry) == "a:1") }
            for entry in wonByB.prefix(3) { #expect(try await f.lockHolder(entry) == "b:1") }
            // A retried claim finds its own lock; the other claimer is still refused.
            #expect(try await f.claim(token: "a:1", wonByA) == wonByA.map { _ in 1 })
            #expect(try await f.claim(on: rival, token: "b:1", wonByA) == wonByA.map { _ in 2 })

            // Each owner commits what it won: first commits, bits set, entries acked, locks released.
            #expect(try await f.commit(token: "a:1", wonByA) == wonByA.map { _ in 1 })
            #expect(try await f.commit(on: rival, token: "b:1", consumer: "b", wonByB) == wonByB.map { _ in 1 })
            #expect(try await f.int("BITCOUNT", f.keyspace.processed) == Int64(keys))
            #expect(try await f.pending() == 0)
            #expect(try await scanKeys(f.connection, match: f.keyspace.lockPrefix + "*").isEmpty)
        }
    }

    func claimInBatches(_ f: ProtocolFixture, on c: RedisConnection, token: String, _ entries: [StreamEntry]) async throws -> [Int64] {
        var codes: [Int64] = []
        for start in stride(from: 0, to: entries.count, by: 10) {
            codes += try await f.claim(on: c, token: token, Array(entries[start..<min(start + 10, entries.count)]))
        }
        return codes
    }

    @Test func commitIsRecordedRepeatsAreCountedAndLapsedLocksAreFenced() async throws {
        try await ProtocolFixture.with { f in
            let k = f.keyspace
            try await f.generate(ttlMs: 60_000, first: 0, count: 10)
            #expect(try await f.publish(Array(0..<10)) == 10)
            let entries = try await f.readGroup(consumer: "a", count: 10)
            try #require(entries.count == 10)
            #expect(try await f.claim(token: "a:1", entries) == Array(repeating: 1, count: 10))

            // One lock lapsed (its time passed), another was taken by a different claim meanwhile: both commits are fenced.
            let lapsed = entries[3], moved = entries[6]
            try await f.setLock(lapsed, token: "a:1", ms: -1)
            try await f.setLock(moved, token: "b:9")
            let codes = try await f.commit(token: "a:1", entries)
            #expect(codes == (0..<10).map { $0 == 3 || $0 == 6 ? 0 : 1 })
            #expect(try await f.int("BITCOUNT", k.processed) == 8)
            #expect(try await f.int("GETBIT", k.processed, String(lapsed.index)) == 0)
            #expect(try await f.int("GETBIT", k.processed, String(moved.index)) == 0)
            #expect(try await f.int("GETBIT", k.processed, String(entries[0].index)) == 1)
            #expect(try await f.pending() == 2, "fenced entries stay pending, to be redone")
            #expect(try await f.lockHolder(moved) == "b:9", "a fenced commit must not release another claim's lock")
            #expect(try await f.lockHolder(lapsed) == nil, "a fenced commit lets its own lapsed lock go")

            // The identical call again (a retry after a lost reply) gets the same answer and changes nothing.
            #expect(try await f.commit(token: "a:1", entries) == codes)
            #expect(try await f.int("BITCOUNT", k.processed) == 8)
            #expect(try await f.pending() == 2)

            // The new holder commits the moved key; the lapsed one is claimed and committed anew.
            #expect(try await f.commit(token: "b:9", consumer: "b", [moved]) == [1])
            #expect(try await f.claim(token: "a:2", [lapsed]) == [1])
            #expect(try await f.commit(token: "a:2", [lapsed]) == [1])
            #expect(try await f.int("BITCOUNT", k.processed) == 10)
            #expect(try await f.pending() == 0)

            // A lock holder committing a key that is already processed: a repeat (2), reported, never hidden.
            try await f.setLock(entries[0], token: "c:1")
            #expect(try await f.commit(token: "c:1", [entries[0]]) == [2])
            #expect(try await f.int("BITCOUNT", k.processed) == 10)

            // A duplicate delivery of a processed key: the claim answers 0 and acknowledges it, without a lock.
            let done = entries[0]
            try await f.connection.send("XADD", k.stream, "*", "k", String(done.index), "d", String(done.deadline), "s", "n")
            let again = try await f.readGroup(consumer: "a", count: 10)
            try #require(again.count == 1)
            #expect(try await f.pending() == 1)
            #expect(try await f.claim(token: "a:3", again) == [0])
            #expect(try await f.pending() == 0)
            #expect(try await scanKeys(f.connection, match: k.lockPrefix + "*").isEmpty)
        }
    }

    /// One call settles a batch and reads and claims the next: the commit as the commit script makes it, the new
    /// entries pending to the consumer and locked under the next token; a retry answers the commit the same.
    @Test func settleAndReadCommitsOneBatchAndClaimsTheNext() async throws {
        try await ProtocolFixture.with { f in
            let k = f.keyspace
            try await f.generate(ttlMs: 60_000, first: 0, count: 12)
            #expect(try await f.publish(Array(0..<12)) == 12)
            let first = try await f.readGroup(consumer: "a", count: 4)
            #expect(try await f.claim(token: "a:1", first) == [1, 1, 1, 1])
            // Another consumer holds the lock of one key of the next batch: that one is refused (2).
            let next = try await f.connection.send(RedisCommand(["XRANGE", k.stream, "-", "+"])).array?.compactMap(StreamEntry.init) ?? []
            try #require(next.count == 12)
            try await f.setLock(next[4], token: "b:7")
            let settled = try await f.settleAndRead(token: "a:1", count: 5, nextToken: "a:2", first)
            #expect(settled.codes == [1, 1, 1, 1])
            #expect(settled.read.map(\.index) == Array(next[4..<9]).map(\.index))
            #expect(settled.claims == [2, 1, 1, 1, 1])
            #expect(try await f.int("BITCOUNT", k.processed) == 4)
            #expect(try await f.pending() == 5, "the 5 read are pending to the consumer")
            for entry in settled.read.dropFirst() { #expect(try await f.lockHolder(entry) == "a:2") }
            #expect(try await f.lockHolder(next[4]) == "b:7")
            for entry in first { #expect(try await f.lockHolder(entry) == nil, "the settled batch's locks are released") }
            // The identical call again (a lost reply): the same commit codes, nothing committed twice.
            let retried = try await f.settleAndRead(token: "a:1", count: 0, nextToken: "a:3", first)
            #expect(retried.codes == [1, 1, 1, 1] && retried.read.isEmpty)
            #expect(try await f.int("BITCOUNT", k.processed) == 4)
            // The next batch commits as claimed; with nothing left to read, nothing is read.
            let claimedNext = Array(settled.read.dropFirst())
            let end = try await f.settleAndRead(token: "a:2", count: 50, nextToken: "a:3", claimedNext)
            #expect(end.codes == [1, 1, 1, 1])
            #expect(end.read.count == 3, "the last 3 unread entries")
            #expect(try await f.int("BITCOUNT", k.processed) == 8)
        }
    }

    @Test func failedWorkIsHandedBackThenDeadLetteredAtTheMaximumDeliveries() async throws {
        try await ProtocolFixture.with { f in
            let k = f.keyspace
            try await f.generate(ttlMs: 60_000, first: 0, count: 2)
            #expect(try await f.publish([0, 1]) == 2)
            let entries = try await f.readGroup(consumer: "a", count: 10)
            try #require(entries.count == 2)
            let (failing, fine) = (entries[0], entries[1])

            // First delivery fails: handed back (3), still pending to the consumer, delivered once more, unlocked.
            #expect(try await f.claim(token: "a:1", entries) == [1, 1])
            #expect(try await f.commit(token: "a:1", maxDeliveries: 2, entries, succeeded: [false, true]) == [3, 1])
            #expect(try await f.deliveries(of: failing) == 2)
            #expect(try await f.deliveries(of: fine) == nil)
            #expect(try await f.lockHolder(failing) == nil)
            #expect(try await f.int("GETBIT", k.processed, String(failing.index)) == 0)

            // Second delivery fails too, at the maximum: dead-lettered (4) with its ack, its bit, one entry.
            #expect(try await f.claim(token: "a:2", [failing]) == [1])
            #expect(try await f.commit(token: "a:2", maxDeliveries: 2, [failing], succeeded: [false]) == [4])
            #expect(try await f.pending() == 0)
            #expect(try await f.int("XLEN", k.deadLetters) == 1)
            #expect(try await f.int("GETBIT", k.deadBits, String(failing.index)) == 1)
            #expect(try await f.int("GETBIT", k.processed, String(failing.index)) == 0)
            #expect(try await f.int("BITCOUNT", k.processed) == 1)
            // The retry of that call answers the same and writes no second dead letter.
            #expect(try await f.commit(token: "a:2", maxDeliveries: 2, [failing], succeeded: [false]) == [4])
            #expect(try await f.int("XLEN", k.deadLetters) == 1)

            // A late duplicate delivery of the dead-lettered key is acknowledged at claim time, not redone.
            try await f.connection.send("XADD", k.stream, "*", "k", String(failing.index), "d", String(failing.deadline), "s", "s")
            let again = try await f.readGroup(consumer: "b", count: 10)
            #expect(try await f.claim(token: "b:1", again) == [0])
            #expect(try await f.pending() == 0)
        }
    }
}
