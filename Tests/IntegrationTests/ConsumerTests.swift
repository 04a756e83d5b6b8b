import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

/// `StreamConsumer` on a real server, one loop at a time: it processes what it reads exactly once, takes over the
/// entries of a consumer whose lease lapsed, and never processes a key twice when the lapsed lease is its own.
@Suite(.serialized)
struct ConsumerTests {
    /// A context for consumers with no simulated work (so a batch is settled in one commit call).
    func consumerContext(_ f: ProtocolFixture, keys: Int, counters: RunCounters) -> PipelineContext {
        var configuration = RunConfiguration()
        configuration.keys = keys
        configuration.consumers = 2
        configuration.work = .zero
        configuration.timeout = .seconds(5)
        return PipelineContext(keyspace: f.keyspace.run, scripts: f.scripts, settings: configuration.pipelineSettings, counters: counters,
                               latencies: LatencyRecorder(), orphans: OrphanBoard(), recoveries: RecoveryLog(),
                               serverOffsetMilliseconds: 0)
    }

    /// Runs `consumer` until `keys` keys are finished, or at most `loops` loops.
    func runUntilDone(_ consumer: StreamConsumer, counters: RunCounters, keys: Int, loops: Int = 5) async throws {
        let calls = Counter()
        try await consumer.run(shouldStop: { counters.finished >= keys || calls.increment() > loops })
    }

    /// Generates and publishes keys `0 ..< keys` (due in a minute: nothing expires during the test).
    func seed(_ f: ProtocolFixture, keys: Int) async throws {
        try await f.generate(ttlMs: 60_000, first: 0, count: keys)
        #expect(try await f.publish(Array(0..<keys)) == keys)
    }

    @Test func consumerCommitsEachReadKeyOnce() async throws {
        try await ProtocolFixture.with { f in
            try await seed(f, keys: 300)
            let counters = RunCounters()
            let stats = ConsumerStats(name: "consumer-0")
            let connection = try await f.open("itest-consumer-0")
            defer { connection.close() }
            let consumer = StreamConsumer(connection: connection, context: consumerContext(f, keys: 300, counters: counters), stats: stats)
            try await runUntilDone(consumer, counters: counters, keys: 300)
            #expect(stats.processed.load(ordering: .relaxed) == 300)
            #expect(counters[\.committed] == 300)
            #expect(counters[\.duplicateCommits] == 0)
            #expect(try await f.int("BITCOUNT", f.keyspace.processed) == 300)
            #expect(try await f.pending() == 0)
            #expect(try await scanKeys(f.connection, match: f.keyspace.lockPrefix + "*").isEmpty)
        }
    }

    @Test func entriesOfALapsedConsumerAreTakenOverAtOnce() async throws {
        try await ProtocolFixture.with { f in
            try await seed(f, keys: 40)
            // consumer-dead read every entry and died before claiming any: they sit pending, not idle for long.
            let taken = try await f.readGroup(consumer: "consumer-dead", count: 100)
            try #require(taken.count == 40)
            let counters = RunCounters()
            let context = consumerContext(f, keys: 40, counters: counters)
            context.orphans.add("consumer-dead")
            let stats = ConsumerStats(name: "consumer-1")
            let connection = try await f.open("itest-consumer-1")
            defer { connection.close() }
            // Nothing raises the shard's idle gauge here, so XAUTOCLAIM never runs: only the take-over can bring these back.
            try await runUntilDone(StreamConsumer(connection: connection, context: context, stats: stats), counters: counters, keys: 40)
            #expect(stats.processed.load(ordering: .relaxed) == 40)
            #expect(counters[\.reclaimed] == 40)
            #expect(counters[\.duplicateCommits] == 0)
            #expect(try await f.int("BITCOUNT", f.keyspace.processed) == 40)
            #expect(try await f.pending() == 0)
            #expect(context.orphans.take() == nil)
        }
    }

    /// A live consumer whose own lease lapsed (its heartbeat came late, e.g. on a busy machine) finds its own name
    /// on the orphan board. Taking over "its own" pending entries must not put the entries it has just read into
    /// its batch a second time: each key is still worked on and committed once.
    @Test func consumerTakingOverItsOwnLapsedLeaseProcessesEachKeyOnce() async throws {
        try await ProtocolFixture.with { f in
            try await seed(f, keys: 20)
            let counters = RunCounters()
            let context = consumerContext(f, keys: 20, counters: counters)
            let stats = ConsumerStats(name: "consumer-0")
            context.orphans.add(stats.name)
            let connection = try await f.open("itest-consumer-0")
            defer { connection.close() }
            try await runUntilDone(StreamConsumer(connection: connection, context: context, stats: stats), counters: counters, keys: 20)
            #expect(counters[\.duplicateCommits] == 0,
                    "keys committed twice: the batch held the same entries twice (read, then taken over from itself)")
            #expect(stats.processed.load(ordering: .relaxed) == 20)
            #expect(try await f.int("BITCOUNT", f.keyspace.processed) == 20)
            #expect(try await f.pending() == 0)
        }
    }
}
