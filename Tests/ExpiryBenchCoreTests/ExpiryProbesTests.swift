import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

/// Redis's own expiry lag from probe events, the footprint's INFO parsing, and the suggested rate of a saturated run.
@Suite("Expiry probes and footprint")
struct ExpiryProbesTests {
    @Test func lagPercentilesCountMissingProbesAsTheWindow() {
        let probes = ExpiryProbes(window: .seconds(2))
        probes.wrote(10, deadline: 1_000)
        for lag in [10, 20, 30, 40, 50, 60] { probes.heard(deadline: 1_000, lagMilliseconds: Int64(lag)) }
        probes.heard(deadline: 1_000, lagMilliseconds: 5_000)  // came, but after the window: missing
        let summary = probes.summary()
        #expect(summary.count == 6)
        #expect(summary.missing == 4)
        #expect(abs(summary.p50 - 50) < 0.1)
        #expect(summary.p90 == 2_000, "the 90th percentile lands on missing probes: the window, a lower bound")
        #expect(summary.describe(summary.p90) == "≥ 2000ms")
        #expect(summary.describe(summary.p50) == "50.0ms")
        #expect(summary.line.contains("10 probes, 4 missing after 2s"))
    }

    @Test func probesSettleWhenAllCameOrTheWindowPassed() {
        let probes = ExpiryProbes(window: .seconds(1))
        #expect(probes.settled(serverNow: 0), "no probe written: nothing to wait for")
        probes.wrote(2, deadline: 10_000)
        #expect(!probes.settled(serverNow: 10_500))
        probes.heard(deadline: 10_000, lagMilliseconds: 5)
        #expect(!probes.settled(serverNow: 10_900))
        #expect(probes.settled(serverNow: 11_001), "the window of the last probe has passed")
        probes.heard(deadline: 10_000, lagMilliseconds: 7)
        #expect(probes.settled(serverNow: 10_100))
    }

    /// At most `limit` probes wait at once; a probe whose window has passed (its event lost) gives its place back.
    @Test func probesInFlightAreBoundedAndLostOnesFreeTheirPlace() {
        let probes = ExpiryProbes(window: .seconds(1))
        #expect(probes.reserve(8, deadline: 1_000, serverNow: 900, limit: 10) == 8)
        #expect(probes.reserve(8, deadline: 1_010, serverNow: 910, limit: 10) == 2, "only 2 places left")
        #expect(probes.reserve(1, deadline: 1_020, serverNow: 920, limit: 10) == 0)
        probes.heard(deadline: 1_000, lagMilliseconds: 50)
        #expect(probes.reserve(5, deadline: 1_030, serverNow: 1_050, limit: 10) == 1, "one event came: one place")
        // The 7 probes of deadline 1,000 that never came are missing once its window has passed: their places free up.
        #expect(probes.reserve(9, deadline: 2_005, serverNow: 2_005, limit: 10) == 7)
        probes.cancel(7, deadline: 2_005)
        #expect(probes.count == 11, "8 + 2 + 1 written; the 7 cancelled were never written")
        #expect(probes.summary().missing == 10)
    }

    @Test func noProbesReportsNothingMissing() {
        let summary = ExpiryProbes(window: .seconds(1)).summary()
        #expect(summary.count == 0 && summary.missing == 0 && summary.p50 == 0)
        #expect(summary.line == "no probes")
    }

    @Test func keysWithTTLFromInfoKeyspace() {
        let info = "# Keyspace\r\ndb0:keys=120,expires=97,avg_ttl=3443\r\ndb3:keys=5,expires=2,avg_ttl=1\r\n"
        #expect(FootprintSampler.keysWithTTL(inKeyspaceInfo: info, database: 0) == 97)
        #expect(FootprintSampler.keysWithTTL(inKeyspaceInfo: info, database: 3) == 2)
        #expect(FootprintSampler.keysWithTTL(inKeyspaceInfo: info, database: 1) == 0)
        #expect(FootprintSampler.keysWithTTL(inKeyspaceInfo: "# Keyspace\r\n", database: 0) == 0)
    }

    @Test func suggestedRateIsJustUnderTheRateReached() {
        var report = ReportFixture.report()
        report.throughputKeysPerSec = 12_428
        #expect(report.suggestedRate == 11_000)
        report.throughputKeysPerSec = 63_100
        #expect(report.suggestedRate == 56_000)
        report.throughputKeysPerSec = 81
        #expect(report.suggestedRate == 72)
        report.throughputKeysPerSec = 5
        #expect(report.suggestedRate == 4)
    }
}
