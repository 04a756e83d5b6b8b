import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// Report lines only for what happened (issue 27, case 13): saturation only when the consumers held the generator
/// back, chaos lines only with `--chaos`, progress capped at the total and rounded down. (The probe window: in
/// `ProbeReportTests`.)
@Suite("Report lines only for what happened")
struct ReportTruthTests {
    // MARK: Saturation

    func figures(waits: Int, onConsumers: Int, consumerErrors: Int = 0) -> RunFigures {
        var figures = RunFigures()
        figures.generatorWaits = waits
        figures.generatorWaitsOnConsumers = onConsumers
        figures.consumerErrors = consumerErrors
        return figures
    }

    /// Saturated only when the consumers held the generator back: not when the keys it waited on had not expired
    /// (`--sweeper off` beside a million TTL keys), nor when a stall, a failure, a failover or failing consumer
    /// round trips (an outage) slowed the run.
    @Test func saturatedOnlyWhenTheConsumersHeldTheGeneratorBack() {
        #expect(RunReport.saturated(figures(waits: 284, onConsumers: 280), stalled: false, failed: false, failovers: 0))
        #expect(!RunReport.saturated(figures(waits: 0, onConsumers: 0), stalled: false, failed: false, failovers: 0))
        #expect(!RunReport.saturated(figures(waits: 40, onConsumers: 0), stalled: false, failed: false, failovers: 0), "waiting on expiry")
        #expect(!RunReport.saturated(figures(waits: 40, onConsumers: 10), stalled: false, failed: false, failovers: 0), "mostly waiting on expiry")
        #expect(!RunReport.saturated(figures(waits: 284, onConsumers: 280), stalled: true, failed: false, failovers: 0))
        #expect(!RunReport.saturated(figures(waits: 284, onConsumers: 280), stalled: false, failed: true, failovers: 0))
        #expect(!RunReport.saturated(figures(waits: 284, onConsumers: 280), stalled: false, failed: false, failovers: 1))
        #expect(!RunReport.saturated(figures(waits: 284, onConsumers: 280, consumerErrors: 64), stalled: false, failed: false, failovers: 0))
    }

    @Test func saturatedLineSaysWhatHeldTheGeneratorBack() {
        var report = ReportFixture.report()
        report.saturated = true
        report.generatorWaits = 284
        report.generatorWaitsOnConsumers = 280
        report.throughputKeysPerSec = 12_450
        #expect(ReportPrinter.render(report).contains("Saturated at 12,450 keys/s: the consumers could not keep up, so the generator was held back (284 waits, at least half of them with more keys waiting for the consumers than for their expiry) and the latency above is mostly queueing time"))
    }

    // MARK: Chaos

    @Test func chaosAndRecoveryLinesOnlyWithChaos() {
        var report = ReportFixture.report()
        report.chaos.leaseExpiries = 64
        let without = ReportPrinter.render(report)
        #expect(!without.contains("  chaos ") && !without.contains("  recovery "), "a run without --chaos: \(without)")

        report.settings.chaos = true
        report.chaos.leaseExpiries = 0
        let nothingRecovered = ReportPrinter.render(report)
        #expect(nothingRecovered.contains("  chaos                     0 consumer crashes, 0 stalls past the lock TTL, 0 subscriber disconnections"))
        #expect(!nothingRecovered.contains("  recovery "))

        report.chaos.crashes = 3
        report.chaos.leaseExpiries = 3
        report.chaos.recoveries = 3
        report.chaos.recoveryMeanMs = 120
        report.chaos.recoveryMaxMs = 180
        #expect(ReportPrinter.render(report).contains("  recovery                  3 lapsed leases; 3 crashed consumers' entries taken over after 120ms on average (max 180ms)"))
    }

    // MARK: Progress

    @Test func progressIsCappedAtTheTotalAndRoundedDown() {
        #expect(StatsReporter.progress(199_925, of: 200_000) == (199_925, "99.9"))
        #expect(StatsReporter.progress(199_999, of: 200_000) == (199_999, "99.9"))
        #expect(StatsReporter.progress(200_000, of: 200_000) == (200_000, "100.0"))
        #expect(StatsReporter.progress(200_080, of: 200_000) == (200_000, "100.0"), "keys redone after a failover count once")
        #expect(StatsReporter.progress(1, of: 3) == (1, "33.3"))
        #expect(StatsReporter.progress(0, of: 0) == (0, "0.0"))
    }
}
