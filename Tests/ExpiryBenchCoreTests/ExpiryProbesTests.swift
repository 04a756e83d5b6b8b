import Testing
@testable import ExpiryBenchCore

/// Redis's own expiry lag from probe events, the footprint's INFO parsing, and the suggested rate of a saturated run.
@Suite("Expiry probes and footprint")
struct ExpiryProbesTests {
    @Test func lagPercentilesCountMissingProbesAsTheWindow() {
        let probes = ExpiryProbes(window: .seconds(2))
        probes.wrote(10, deadline: 1_000)
        for lag in [10, 20, 30, 40, 50, 60] { probes.heard(lagMilliseconds: Int64(lag)) }
        probes.heard(lagMilliseconds: 5_000)  // came, but after the window: missing
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
        probes.heard(lagMilliseconds: 5)
        #expect(!probes.settled(serverNow: 10_900))
        #expect(probes.settled(serverNow: 11_001), "the window of the last probe has passed")
        probes.heard(lagMilliseconds: 7)
        #expect(probes.settled(serverNow: 10_100))
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
