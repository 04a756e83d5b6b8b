import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

@Suite("RunLayout shards, key ranges and lease names")
struct RunLayoutTests {
    let run = RunKeyspace(namespace: "bench", runID: "r1", cluster: true)

    @Test func clusterKeysCarryTheirShardsTagAndRunLevelKeysTheRunsTag() {
        let layout = RunLayout(run: run, tags: ["r1.0", "r1.1"])
        let shard = layout.shards[1]
        #expect(shard.stream == "bench:r1:{r1.1}:stream")
        #expect(shard.dataKey(7) == "bench:r1:{r1.1}:k:7")
        #expect(shard.lockPrefix == "bench:r1:{r1.1}:lock:")
        #expect(shard.tally == "bench:r1:{r1.1}:tally")
        #expect(shard.run.meta == "bench:r1:{r1}:meta")
        #expect(shard.run.leases == "bench:r1:{r1}:leases")
        // Every key a script touches is in the shard's slot.
        let slots = Set([shard.stream, shard.dueIndex, shard.processed, shard.deadBits, shard.deadLetters, shard.tally, shard.commitRecords, shard.probeKey(deadline: 1, number: 7),
                         shard.dataKey(7), shard.lockPrefix + "7", shard.overlap].map(HashSlot.of))
        #expect(slots.count == 1)
    }

    @Test func aSingleShardOnASingleServerKeepsTheUntaggedNames() {
        let layout = RunLayout(run: RunKeyspace(namespace: "bench", runID: "r1"), tags: RunLayout.singleServerTags(runID: "r1", count: 1))
        #expect(layout.shards[0].stream == "bench:r1:stream")
        #expect(layout.storedTags == "")
        #expect(RunLayout(run: layout.run, storedTags: "") == layout)
    }

    @Test func storedTagsRoundTrip() {
        let layout = RunLayout(run: run, tags: ["r1.0", "r1.4", "r1.9"])
        #expect(RunLayout(run: run, storedTags: layout.storedTags) == layout)
    }

    @Test func locateFindsTheShardAndIndexOfADataKeyAndNothingElse() {
        let layout = RunLayout(run: run, tags: ["r1.0", "r1.1"])
        #expect(layout.locate(dataKey: "bench:r1:{r1.1}:k:42")! == (1, 42))
        #expect(layout.locate(dataKey: "bench:r1:{r1.2}:k:42") == nil)
        #expect(layout.locate(dataKey: "bench:r1:{r1.1}:lock:42") == nil)
        #expect(layout.locate(dataKey: "bench:r2:{r1.1}:k:42") == nil)
    }

    @Test func clusterTagsSpreadShardsEvenlyOverPrimaries() throws {
        // Three primaries owning thirds of the slots, as redis-cli --cluster create splits them.
        let owner = { (tag: String) -> Int in HashSlot.of("{\(tag)}") * 3 / HashSlot.count }
        let tags = RunLayout.clusterTags(runID: "r1", count: 9, primaries: 3, primaryOf: owner)
        #expect(Set(tags).count == 9)
        for (shard, tag) in tags.enumerated() {
            #expect(owner(try #require(tag)) == shard % 3, "shard \(shard) tag \(tag ?? "nil")")
        }
    }

    @Test func rangesFollowTheWeightsAndCoverEveryKeyOnce() {
        let ranges = RunLayout.ranges(keys: 1000, weights: [2, 1, 1])
        #expect(ranges == [0..<500, 500..<750, 750..<1000])
        #expect(RunLayout.ranges(keys: 10, weights: [0, 0]) == [0..<5, 5..<10])
        let uneven = RunLayout.ranges(keys: 300_000, weights: [8, 7, 7, 7, 7, 7, 7, 7, 7])
        #expect(uneven.reduce(0) { $0 + $1.count } == 300_000)
        #expect(zip(uneven, uneven.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
    }

    @Test func consumersContinueTheRoundRobinOfEarlierOnes() {
        let layout = RunLayout(run: run, tags: (0..<9).map { "r1.\($0)" })
        // The driver's 3 consumers take shards 0-2; a process joining after them starts at shard 3.
        #expect((0..<3).map { layout.shard(forConsumer: $0) } == [0, 1, 2])
        #expect((0..<7).map { layout.shard(forConsumer: $0, after: 3) } == [3, 4, 5, 6, 7, 8, 0])
    }

    @Test func leaseMembersNameTheConsumerAndItsShard() {
        let member = LeaseKeeper.Member(consumer: "p1x2.consumer-7", shard: 4)
        #expect(member.description == "p1x2.consumer-7@4")
        #expect(LeaseKeeper.Member(member.description) == member)
        #expect(LeaseKeeper.Member("consumer-7") == nil)
        #expect(LeaseKeeper.Member("consumer-7@x") == nil)
    }

    @Test func processReportsRoundTripAndMergeLatencies() throws {
        let counters = RunCounters()
        counters.add(\.lockSkips, 3)
        counters.add(\.committed, 5)
        let latencies = LatencyRecorder()
        latencies.record(microseconds: [1000, 2000, 2000])
        let report = ProcessReport(process: "p1", consumers: 2, counters: counters, latencies: latencies, reconnects: 1)
        let decoded = try #require(ProcessReport.decode(report.json))
        #expect(decoded == report)
        let driver = RunCounters()
        let merged = LatencyRecorder()
        decoded.merge(into: driver, latencies: merged)
        #expect(driver[\.lockSkips] == 3)
        // Another process's first commits are counted apart (the verdict compares them with Redis).
        #expect(driver[\.committed] == 0)
        #expect(decoded.figures.committed == 5)
        #expect(merged.snapshot().totalCount == 3)
        #expect(report.json.contains("\"lock_skips\":3"), "\(report.json)")
    }

    @Test func figuresAddUpFieldByFieldAndEveryFieldIsListed() throws {
        // Every encoded field but the peak is in `additive`, so that `+` cannot silently drop a new counter.
        let names = try #require(try JSONSerialization.jsonObject(with: SnakeCaseJSON.encoder.encode(RunFigures())) as? [String: Int]).keys
        #expect(names.count == RunFigures.additive.count + 1, "\(names.sorted())")
        var one = RunFigures()
        for (n, field) in RunFigures.additive.enumerated() { one[keyPath: field] = n + 1 }
        one.maxUnexpired = 7
        var other = RunFigures()
        other.maxUnexpired = 9
        other.lockSkips = 100
        let sum = one + other
        for (n, field) in RunFigures.additive.enumerated() where field != \RunFigures.lockSkips {
            #expect(sum[keyPath: field] == n + 1)
        }
        #expect(sum.lockSkips == one.lockSkips + 100)
        #expect(sum.maxUnexpired == 9)
        #expect(Set(RunFigures.additive.map { $0 as PartialKeyPath<RunFigures> }).count == RunFigures.additive.count)
    }
}
