import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

/// Whole runs through the library (`BenchmarkRun.execute()`) against a real server: the verdict and counts, and
/// that the run leaves the user's data and settings as it found them.
@Suite(.serialized)
struct RunTests {
    func configuration(_ server: EmbeddedRedis, keys: Int, consumers: Int, work: Duration = .milliseconds(1),
                       runID: String, keep: Bool = false) -> RunConfiguration {
        var configuration = testRunConfiguration(server, keys: keys, consumers: consumers, work: work,
                                                 namespace: "itest-run", runID: runID, keep: keep)
        configuration.stallTimeout = .seconds(20)
        #expect(configuration.problems().isEmpty, "test configuration rejected: \(configuration.problems())")
        return configuration
    }

    func expectVerified(_ report: RunReport, keys: Int, consumers: Int) {
        let dump = (try? ReportFile.encode(report)).map { String(decoding: $0, as: UTF8.self) } ?? "\(report)"
        #expect(report.verdict == .exactlyOnce, "report: \(dump)")
        #expect(report.problems.isEmpty)
        #expect(report.keysRequested == keys)
        #expect(report.keysGenerated == keys)
        #expect(report.keysProcessed == keys)
        #expect(report.duplicateCommits == 0)
        #expect(report.lost == 0)
        #expect(report.pendingAtEnd == 0)
        #expect(report.dueAtEnd == 0)
        #expect(report.consumers.count == consumers)
        #expect(Set(report.consumers.map(\.name)).count == consumers)
        #expect(report.consumers.reduce(0) { $0 + $1.processed } == keys)
        #expect(report.latencyMs.count == UInt64(keys))
        #expect(report.publishedByNotification + report.publishedBySweeper == keys)
    }

    @Test func fullRunIsExactlyOnceAndLeavesTheUsersDataAndSettingsAlone() async throws {
        try await withRedis { server in
            let control = try await connect(server, name: "itest-observer")
            defer { control.close() }
            // The user's data: plain keys, one with a TTL, one under the run's namespace but another run id.
            try await control.send("SET", "user:greeting", "hello")
            try await control.send("SET", "user:session", "abc", "PX", "600000")
            try await control.send("HSET", "user:profile", "name", "ada")
            try await control.send("SET", "itest-run:someone-else:k:1", "theirs")
            try await control.send("CONFIG", "SET", "notify-keyspace-events", "Kg")
            let settingBefore = try await notifyKeyspaceEvents(control)

            let lines = LineBuffer()
            let report = try await BenchmarkRun(configuration: configuration(server, keys: 5000, consumers: 8, runID: "full1"),
                                                say: lines.say).execute()
            expectVerified(report, keys: 5000, consumers: 8)
            #expect(report.runID == "full1")

            #expect(try await control.send("GET", "user:greeting") == .bulk("hello"))
            #expect(try await control.send("GET", "user:session") == .bulk("abc"))
            let ttl = try #require(try await control.send("PTTL", "user:session").int)
            #expect(ttl > 0 && ttl <= 600_000)
            #expect(try await control.send("HGET", "user:profile", "name") == .bulk("ada"))
            #expect(try await control.send("GET", "itest-run:someone-else:k:1") == .bulk("theirs"))
            #expect(try await notifyKeyspaceEvents(control) == settingBefore)
            // It said what it changed, and that it would put it back.
            #expect(lines.all.contains { $0.contains("notify-keyspace-events") && $0.contains(settingBefore) })

            #expect(try await scanKeys(control, match: "itest-run:full1:*") == [])
            #expect(try await control.send("DBSIZE") == .integer(4))
        }
    }

    @Test func keepLeavesTheRunsKeysInPlace() async throws {
        try await withRedis { server in
            let control = try await connect(server, name: "itest-observer")
            defer { control.close() }
            let settingBefore = try await notifyKeyspaceEvents(control)
            let report = try await BenchmarkRun(configuration: configuration(server, keys: 2000, consumers: 4, runID: "kept1", keep: true),
                                                say: { _ in }).execute()
            expectVerified(report, keys: 2000, consumers: 4)
            let keyspace = RunKeyspace(namespace: "itest-run", runID: "kept1").shard(0, tag: nil)
            let kept = try await scanKeys(control, match: "itest-run:kept1:*")
            #expect(!kept.isEmpty)
            #expect(kept.contains(keyspace.processed))
            #expect(kept.contains(keyspace.stream))
            #expect(try await control.send("BITCOUNT", keyspace.processed) == .integer(2000))
            #expect(try await notifyKeyspaceEvents(control) == settingBefore)
            // Removing them afterwards takes exactly those keys.
            let removed = try await RunCleanup.removeKeys(of: keyspace.run, on: control)
            #expect(removed == kept.count)
            #expect(try await scanKeys(control, match: "itest-run:kept1:*") == [])
        }
    }

    /// Below saturation every key reaches the stream through its expired event (raised by Redis's own expiry or
    /// by the sweeper's touch), the probes measure Redis's own lag, and the run's own keys with a TTL stay few.
    @Test func expiredEventsCarryTheRunAndItsFootprintIsSmall() async throws {
        try await withRedis { server in
            var configuration = configuration(server, keys: 6000, consumers: 8, runID: "events1")
            configuration.rate = 3000
            let report = try await BenchmarkRun(configuration: configuration, say: { _ in }).execute()
            expectVerified(report, keys: 6000, consumers: 8)
            #expect(report.publishedByNotification >= 5700, "≥ 95 % from events: \(report.publishedByNotification) (rescued \(report.publishedBySweeper))")
            #expect(report.expiredBy.redis + report.expiredBy.sweeper == 6000)
            #expect(report.expiryLagMs.count + report.expiryLagMs.missing == 60, "one probe per 100 keys: \(report.expiryLagMs)")
            #expect(report.expiryLagMs.missing == 0)
            #expect(report.expiryLagMs.p50 > 0 && report.expiryLagMs.p50 < 5_000)
            #expect(!report.saturated)
            let footprint = report.footprint
            #expect(footprint.samples > 5)
            #expect(footprint.dataKeysPeak > 0)
            // 8 leases, about 3 probes in flight and 10 bookkeeping keys: no per-batch record, no lock with a TTL.
            #expect(footprint.ownTTLKeysPeak <= 40, "own TTL keys: \(footprint)")
        }
    }

    /// At --rate 0 the generator outruns slow consumers: the report says the run was saturated and names a rate.
    @Test func saturatedRunSaysSoAndSuggestsARate() async throws {
        try await withRedis { server in
            var configuration = configuration(server, keys: 3000, consumers: 2, work: .milliseconds(2), runID: "sat1")
            configuration.maxOutstanding = 300
            let report = try await BenchmarkRun(configuration: configuration, say: { _ in }).execute()
            expectVerified(report, keys: 3000, consumers: 2)
            #expect(report.saturated)
            #expect(report.suggestedRate > 0 && Double(report.suggestedRate) < report.throughputKeysPerSec)
            #expect(ReportPrinter.render(report).contains("--rate \(report.suggestedRate)"))
        }
    }

    @Test func runWithoutWorkVerifies() async throws {
        try await withRedis { server in
            let control = try await connect(server, name: "itest-observer")
            defer { control.close() }
            let report = try await BenchmarkRun(configuration: configuration(server, keys: 4000, consumers: 4, work: .zero, runID: "nowork1"),
                                                say: { _ in }).execute()
            expectVerified(report, keys: 4000, consumers: 4)
            #expect(try await scanKeys(control, match: "itest-run:nowork1:*") == [])
        }
    }

    /// Batches past what one Lua call can take at once (about 8,000 values: a batch of 5,000 reads 15,000 words of
    /// BITFIELD) are sent in parts by the scripts.
    @Test func largeBatchesVerify() async throws {
        try await withRedis { server in
            var configuration = configuration(server, keys: 20_000, consumers: 2, work: .zero, runID: "bigbatch1")
            configuration.batch = 5_000
            let report = try await BenchmarkRun(configuration: configuration, say: { _ in }).execute()
            expectVerified(report, keys: 20_000, consumers: 2)
        }
    }

    @Test func twoRunsAfterEachOtherOnOneServerBothVerify() async throws {
        try await withRedis { server in
            let control = try await connect(server, name: "itest-observer")
            defer { control.close() }
            for runID in ["seq1", "seq2"] {
                let report = try await BenchmarkRun(configuration: configuration(server, keys: 1500, consumers: 4, runID: runID),
                                                    say: { _ in }).execute()
                expectVerified(report, keys: 1500, consumers: 4)
            }
            #expect(try await control.send("DBSIZE") == .integer(0))
        }
    }

    @Test func stopRequestedMidRunEndsInterruptedAndStillCleansUp() async throws {
        try await withRedis { server in
            let control = try await connect(server, name: "itest-observer")
            defer { control.close() }
            try await control.send("CONFIG", "SET", "notify-keyspace-events", "Kg")
            let settingBefore = try await notifyKeyspaceEvents(control)
            // 20,000 keys at 4 consumers × 5 ms each: about 25 s of work, far more than the 0.5 s before the stop.
            let stop = StopSignal()
            let run = BenchmarkRun(configuration: configuration(server, keys: 20_000, consumers: 4, work: .milliseconds(5), runID: "stop1"),
                                   stop: stop, say: { _ in })
            let clock = ContinuousClock()
            let start = clock.now
            let stopper = Task {
                try await Task.sleep(for: .milliseconds(500))
                stop.request()
            }
            let report = try await run.execute()
            _ = try? await stopper.value
            let elapsed = clock.now - start
            #expect(report.verdict == .interrupted)
            #expect((report.keysProcessed ?? 0) < 20_000)
            #expect(report.duplicateCommits == 0)
            #expect(elapsed < .seconds(10), "stopping took \(elapsed)")
            #expect(try await scanKeys(control, match: "itest-run:stop1:*") == [])
            #expect(try await notifyKeyspaceEvents(control) == settingBefore)
        }
    }
}
