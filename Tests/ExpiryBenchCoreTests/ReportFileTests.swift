import Foundation
import Histogram
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// Hand-built reports for the report tests.
enum ReportFixture {
    static func latency(p50: Double, p90: Double, p99: Double, p999: Double, max: Double, count: UInt64) -> LatencySummary {
        var summary = LatencySummary(Histogram<UInt64>(highestTrackableValue: 1_000, numberOfSignificantValueDigits: .three))
        summary.p50 = p50; summary.p90 = p90; summary.p99 = p99; summary.p999 = p999; summary.max = max; summary.count = count
        return summary
    }

    static func report(verdict: RunReport.Verdict = .exactlyOnce, problems: [String] = [],
                       consumers: [RunReport.Consumer] = [
                           RunReport.Consumer(name: "consumer-0", processed: 600, share: 0.6),
                           RunReport.Consumer(name: "consumer-1", processed: 400, share: 0.4),
                       ]) -> RunReport {
        var figures = RunFigures()
        figures.duplicateCommits = 1
        figures.duplicateDeliveries = 4
        figures.lockSkips = 5
        figures.fencedCommits = 6
        figures.deadLettered = 3
        figures.reclaimed = 9
        figures.publishedByNotification = 990
        figures.publishedBySweeper = 10
        figures.maxUnexpired = 4321
        return RunReport(RunReport.Findings(
            verdict: verdict, problems: problems, runID: "sx1abc", redis: "redis://:***@db:6380", redisVersion: "7.2.4", server: ServerIdentity(name: "Valkey", version: "8.1.8"),
            keysRequested: 1000, keysGenerated: 1000, keysProcessed: 998, lost: 2, pendingAtEnd: 7, dueAtEnd: 8,
            subscriberReconnects: 0, connectionReconnects: 0,
            chaos: RunReport.Chaos(crashes: 0, stalls: 0, subscriberKills: 0, leaseExpiries: 0, recoveries: 0, recoveryMaxMs: 0, recoveryMeanMs: 0),
            durationSec: 12.5, throughputKeysPerSec: 81.0, lateKeys: 0, lateAfterMs: 1000, maxStreamLength: 77,
            latencyMs: latency(p50: 1.5, p90: 2.25, p99: 10.0, p999: 42.42, max: 88.88, count: 998),
            settings: RunReport.Settings(consumers: 2, ttlMs: 100, workMs: 5, lockTtlMs: 500, rate: 0, batch: 50,
                                         concurrency: 1, maxOutstanding: 10_200, sweeper: true, graceMs: 50, failRate: 0,
                                         maxDeliveries: 3, chaos: false, backgroundKeys: 0),
            consumers: consumers), figures: figures)
    }
}

@Suite("ReportFile JSON")
struct ReportFileTests {
    private func json(_ report: RunReport) throws -> [String: Any] {
        let data = try ReportFile.encode(report)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func topLevelFieldsUseSnakeCase() throws {
        let object = try json(ReportFixture.report())
        #expect(object["verdict"] as? String == "exactly-once")
        #expect(object["run_id"] as? String == "sx1abc")
        #expect(object["redis"] as? String == "redis://:***@db:6380")
        #expect(object["redis_version"] as? String == "7.2.4")
        #expect(object["keys_requested"] as? Int == 1000)
        #expect(object["keys_generated"] as? Int == 1000)
        #expect(object["keys_processed"] as? Int == 998)
        #expect(object["duplicate_commits"] as? Int == 1)
        #expect(object["duplicate_deliveries"] as? Int == 4)
        #expect(object["lock_skips"] as? Int == 5)
        #expect(object["fenced_commits"] as? Int == 6)
        #expect(object["lost"] as? Int == 2)
        #expect(object["dead_lettered"] as? Int == 3)
        #expect(object["pending_at_end"] as? Int == 7)
        #expect(object["due_at_end"] as? Int == 8)
        #expect(object["reclaimed"] as? Int == 9)
        #expect(object["published_by_notification"] as? Int == 990)
        #expect(object["published_by_sweeper"] as? Int == 10)
        #expect(object["expired_by"] as? [String: Int] == ["redis": 0, "sweeper": 0])
        #expect(object["saturated"] as? Bool == false)
        #expect((object["footprint"] as? [String: Int])?.keys.sorted() == ["data_keys_peak", "own_ttl_keys_peak", "samples", "ttl_keys_before"])
        #expect((object["expiry_lag_ms"] as? [String: Any])?.keys.sorted() == ["count", "max", "missing", "p50", "p90", "p99", "unresolved", "window_ms"])
        #expect(object["duration_sec"] as? Double == 12.5)
        #expect(object["throughput_keys_per_sec"] as? Double == 81)
        #expect(object["max_unexpired"] as? Int == 4321)
        #expect(object["max_stream_length"] as? Int == 77)
        #expect(object["problems"] as? [String] == [])
        for key in object.keys {
            #expect(key.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" }, "field '\(key)' is not snake_case")
        }
    }

    @Test func latencyPercentiles() throws {
        let latency = try #require(try json(ReportFixture.report())["latency_ms"] as? [String: Any])
        #expect(latency["p50"] as? Double == 1.5)
        #expect(latency["p90"] as? Double == 2.25)
        #expect(latency["p99"] as? Double == 10)
        #expect(latency["p999"] as? Double == 42.42)
        #expect(latency["max"] as? Double == 88.88)
        #expect(latency["count"] as? Int == 998)
    }

    @Test func consumersNameAndProcessed() throws {
        let consumers = try #require(try json(ReportFixture.report())["consumers"] as? [[String: Any]])
        #expect(consumers.count == 2)
        #expect(consumers.map { $0["name"] as? String } == ["consumer-0", "consumer-1"])
        #expect(consumers.map { $0["processed"] as? Int } == [600, 400])
        #expect(consumers.map { $0["share"] as? Double } == [0.6, 0.4])
    }

    @Test func failedVerdictCarriesItsProblems() throws {
        let report = ReportFixture.report(verdict: .failed, problems: ["2 keys were never committed", "7 stream entries are still pending"])
        let object = try json(report)
        #expect(object["verdict"] as? String == "failed")
        #expect(object["problems"] as? [String] == ["2 keys were never committed", "7 stream entries are still pending"])
        #expect(try json(ReportFixture.report(verdict: .interrupted))["verdict"] as? String == "interrupted")
    }

    @Test func keysAreSortedAndOutputIsPretty() throws {
        let text = String(decoding: try ReportFile.encode(ReportFixture.report()), as: UTF8.self)
        #expect(text.contains("\n"))
        let order = ["\"consumers\"", "\"dead_lettered\"", "\"duplicate_commits\"", "\"keys_generated\"", "\"latency_ms\"", "\"verdict\""]
        let positions = order.compactMap { text.range(of: $0)?.lowerBound }
        #expect(positions.count == order.count)
        #expect(positions == positions.sorted())
    }

    /// The JSON's top-level names are the contract (NOTES.md section 5): named by the encoder now, every one the
    /// checks read is there, and a name beyond them can only be a counter's (a new counter is reported by itself).
    @Test func topLevelNamesAreTheContract() throws {
        var report = ReportFixture.report()
        report.stages = []
        report.thresholds = []
        let names = Set(try json(report).keys)
        let contract: Set<String> = [
            "verdict", "problems", "run_id", "redis", "redis_version", "server", "keys_requested", "keys_generated", "keys_processed",
            "keys_processed_by_clients", "duplicate_commits", "duplicate_deliveries", "lock_skips", "fenced_commits", "lost", "dead_lettered",
            "pending_at_end", "due_at_end", "reclaimed", "redeliveries", "failed_work", "published_by_notification", "published_by_sweeper",
            "subscriber_reconnects", "connection_reconnects", "consumer_errors", "generator_waits", "chaos", "duration_sec",
            "throughput_keys_per_sec", "max_unexpired", "late_keys", "late_after_ms", "max_stream_length", "latency_ms", "stages", "thresholds",
            "settings", "consumers", "shards", "consumer_processes", "consumer_processes_reported", "expired_by", "expiry_lag_ms",
            "saturated", "footprint", "unprocessed", "redis_cpu_us_per_key", "redis_cpu_share", "evicted_keys_during_run", "maxmemory_policy",
        ]
        #expect(contract.isSubset(of: names))
        let counters = Set(try #require(try JSONSerialization.jsonObject(with: SnakeCaseJSON.encoder.encode(RunFigures())) as? [String: Int]).keys)
        #expect(names.subtracting(contract).isSubset(of: counters))
    }

    /// A figure Redis could not give is null in the JSON, with the reason in `unknown`, never a default.
    @Test func unknownFiguresAreNullWithTheirReason() throws {
        var report = ReportFixture.report()
        report.keysProcessed = nil
        report.lost = nil
        report.pendingAtEnd = nil
        report.unknown = ["keys_processed": "Redis at h:1 could not be reached at the end", "lost": "same", "pending_at_end": "same", "duplicate_commits": "same"]
        let object = try json(report)
        for name in ["keys_processed", "lost", "pending_at_end", "duplicate_commits"] {
            #expect(object[name] is NSNull, "\(name): \(String(describing: object[name]))")
        }
        #expect(object["due_at_end"] as? Int == report.dueAtEnd)
        #expect((object["unknown"] as? [String: String])?["keys_processed"] == "Redis at h:1 could not be reached at the end")
        #expect(ReportPrinter.render(report).contains("lost                      unknown (same)"))
    }

    /// A counter of `RunFigures` is a top-level field of the report unless the report shows it in another form,
    /// and every name of that list is a counter's.
    @Test func everyCounterIsReportedOnce() throws {
        let counters = Set(try #require(try JSONSerialization.jsonObject(with: SnakeCaseJSON.encoder.encode(RunFigures())) as? [String: Int]).keys)
        #expect(RunFigures.shownElsewhere.isSubset(of: counters))
        let names = Set(try json(ReportFixture.report()).keys)
        #expect(counters.subtracting(RunFigures.shownElsewhere).isSubset(of: names))
        #expect(RunFigures.shownElsewhere.isDisjoint(with: names))
    }

    @Test func writeStoresTheEncodedReport() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("expiry-bench-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let report = ReportFixture.report()
        try ReportFile.write(report, to: path)
        let stored = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(stored == (try ReportFile.encode(report)))
    }

    @Test
    func settingsFieldsUseSnakeCase() throws {
        let settings = try #require(try json(ReportFixture.report())["settings"] as? [String: Any])
        #expect(settings["ttl_ms"] as? Double == 100)
        #expect(settings["work_ms"] as? Double == 5)
        #expect(settings["lock_ttl_ms"] as? Double == 500)
        #expect(settings["max_outstanding"] as? Int == 10_200)
    }
}
