import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

@Suite("ReportPrinter")
struct ReportPrinterTests {
    private let three = [
        RunReport.Consumer(name: "alpha", processed: 500, share: 0.5),
        RunReport.Consumer(name: "beta", processed: 300, share: 0.3),
        RunReport.Consumer(name: "gamma", processed: 200, share: 0.2),
    ]

    // MARK: consumerTable

    @Test func tableListsEveryConsumer() {
        let lines = ReportPrinter.consumerTable(three)
        #expect(lines.first == "Per-consumer statistics (3 consumers):")
        #expect(lines.count == 6)   // title, header, three rows, shares
        for consumer in three {
            #expect(lines.contains { $0.contains(consumer.name) }, "\(consumer.name) missing")
        }
        #expect(lines[1] == "  consumer    keys  share")
        #expect(lines[2] == "  alpha        500  50.0%")
        #expect(lines[4] == "  gamma        200  20.0%")
    }

    @Test func minMaxAndSpreadLine() {
        let lines = ReportPrinter.consumerTable(three)
        #expect(lines.last == "  shares: min 20.0% (200 keys), max 50.0% (500 keys), spread 30.0%")
    }

    @Test func evenSpreadIsZero() {
        let even = (0..<4).map { RunReport.Consumer(name: "c\($0)", processed: 2500, share: 0.25) }
        #expect(ReportPrinter.consumerTable(even).last == "  shares: min 25.0% (2,500 keys), max 25.0% (2,500 keys), spread 0.0%")
    }

    @Test func longNamesWidenTheColumn() {
        let consumers = [RunReport.Consumer(name: "expiry-bench-consumer-17", processed: 1_234_567, share: 1)]
        let lines = ReportPrinter.consumerTable(consumers)
        #expect(lines[1] == "  consumer                    keys  share")
        #expect(lines[2] == "  expiry-bench-consumer-171,234,567 100.0%")
        #expect(lines.last == "  shares: min 100.0% (1,234,567 keys), max 100.0% (1,234,567 keys), spread 0.0%")
    }

    @Test func noConsumers() {
        #expect(ReportPrinter.consumerTable([]) == ["Per-consumer statistics: no consumers in this process."])
    }

    @Test func manyConsumersAreLaidOutInFourColumns() {
        let consumers = (0..<20).map { RunReport.Consumer(name: "consumer-\($0)", processed: 100 + $0, share: Double(100 + $0) / 2190) }
        let lines = ReportPrinter.consumerTable(consumers)
        #expect(lines.first == "Per-consumer statistics (20 consumers):")
        #expect(lines.count == 1 + 1 + 5 + 1)   // title, header, 20 / 4 rows, shares
        for consumer in consumers {
            let pattern = consumer.name + " "
            #expect(lines.filter { $0.contains(pattern) }.count == 1, "\(consumer.name)")
        }
        // Column-major: the first row holds consumers 0, 5, 10 and 15.
        let firstRow = lines[2]
        let columns = ["consumer-0 ", "consumer-5 ", "consumer-10", "consumer-15"].map { firstRow.range(of: $0)?.lowerBound }
        #expect(columns.allSatisfy { $0 != nil })
        #expect(columns.compactMap { $0 } == columns.compactMap { $0 }.sorted())
        #expect(lines.last == "  shares: min 4.6% (100 keys), max 5.4% (119 keys), spread 0.9%")
    }

    // MARK: render

    @Test func exactlyOnceReport() {
        let text = ReportPrinter.render(ReportFixture.report())
        #expect(text.contains("Final statistics (run sx1abc on redis://:***@db:6380, Valkey 8.1.8)"), "the server as it names itself, not its redis_version")
        #expect(text.contains("  keys generated            1,000 of 1,000"))
        #expect(text.contains("  duration                  12.50 s"))
        #expect(text.contains("  max unexpired keys        4,321"))
        #expect(text.contains("p50 1.50ms  p90 2.25ms  p99 10.0ms  p99.9 42.4ms  max 88.9ms"))
        #expect(text.contains("Per-consumer statistics (2 consumers):"))
        // The fixture has dead letters, so the verdict names both ends a key can reach.
        #expect(text.hasSuffix("Verdict: exactly-once. Each of the 1,000 keys was processed exactly once (998) or dead-lettered exactly once (3)."))
        #expect(!text.contains("reconnects"))
        #expect(!text.contains("generator waits"))
    }

    @Test func failedReportListsProblems() {
        let text = ReportPrinter.render(ReportFixture.report(verdict: .failed, problems: ["2 keys were never committed", "1 commits were repeats"]))
        #expect(text.hasSuffix("Verdict: FAILED.\n  - 2 keys were never committed\n  - 1 commits were repeats"))
    }

    @Test func interruptedReportSaysItIsPartial() {
        let text = ReportPrinter.render(ReportFixture.report(verdict: .interrupted, problems: ["only 10 of 1000 keys were generated"]))
        #expect(text.contains("Verdict: interrupted."))
        #expect(text.contains("the figures above are partial"))
        #expect(text.hasSuffix("  - only 10 of 1000 keys were generated"))
    }

    @Test func optionalLinesAppearWhenNonZero() {
        var report = ReportFixture.report()
        report.subscriberReconnects = 2
        report.consumerErrors = 3
        report.generatorWaits = 1500
        let text = ReportPrinter.render(report)
        #expect(text.contains("  reconnects                subscriber 2, other connections 0, consumer errors 3"))
        #expect(text.contains("  generator waits           1,500 (held back at --max-outstanding 10,200)"))
    }

    @Test func evictionsAreOneLineOnlyWhenRedisEvicted() {
        var report = ReportFixture.report()
        report.evictedKeysDuringRun = 0
        report.maxmemoryPolicy = "allkeys-random"
        #expect(!ReportPrinter.render(report).contains("evicted"))
        report.evictedKeysDuringRun = 11_034
        let text = ReportPrinter.render(report)
        #expect(text.contains("  evicted keys              11,034 during the run under maxmemory-policy allkeys-random: Redis removed keys of any owner, the user's included"))
        #expect(text.contains("  rescued by the sweeper    10 (1.0%: gone, and no expired event came within 0; an evicted data key raises no expired event, and Redis evicted keys during the run)"))
        report.evictedKeysDuringRun = nil
        report.unknown = ["evicted_keys_during_run": "INFO stats refused at h:1: NOPERM"]
        #expect(ReportPrinter.render(report).contains("  evicted keys              unknown (INFO stats refused at h:1: NOPERM) under maxmemory-policy allkeys-random"))
    }

    @Test func whereKeysCameFromAndRedisOwnLag() {
        var report = ReportFixture.report()
        report.expiredBy = RunReport.ExpiredBy(redis: 300, sweeper: 700)
        report.expiryLagMs = ExpiryLag(p50: 53, p90: 90, p99: 10_000, max: 10_000, count: 9, missing: 1, windowMs: 10_000)
        report.footprint.samples = 3
        report.footprint.ownTTLKeysPeak = 75
        report.footprint.dataKeysPeak = 1_300
        let text = ReportPrinter.render(report)
        #expect(text.contains("  published from events     990 (99.0%)"))
        #expect(text.contains("  rescued by the sweeper    10 (1.0%: gone, and no expired event came within 0)"))
        #expect(text.contains("  expired by                Redis's own expiry 300, the sweeper's touch 700 (at deadline + 50ms)"))
        #expect(text.contains("  footprint                 up to 75 keys of the run's own with a TTL (leases, probes, bookkeeping) beside up to 1,300 data keys"))
        #expect(text.contains("  Redis's own expiry lag    p50 53.0ms  p90 90.0ms  p99 ≥ 10.0s  max ≥ 10.0s  (10 probes, 1 missing after 10s)"))
        #expect(!text.contains("Saturated"))
    }

    @Test func saturatedRunSaysLatencyIsQueueing() {
        var report = ReportFixture.report()
        report.saturated = true
        report.generatorWaits = 12
        report.throughputKeysPerSec = 12_428
        let text = ReportPrinter.render(report)
        #expect(text.contains("Saturated at 12,428 keys/s"))
        #expect(text.contains("latency above is mostly queueing time. For on-time latency, run with --rate 11000 or lower."))
    }

    @Test func noCommitsMeansNoLatency() {
        var report = ReportFixture.report()
        report.latencyMs = ReportFixture.latency(p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0)
        #expect(ReportPrinter.render(report).contains("latency deadline→commit   no key was committed: no latency to show"))
    }
}
