import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

/// `expiry-bench capacity`'s search, on a stand-in for the runs (the runs themselves are tested end to end): it
/// rises ×1.5, narrows between the last rate that held and the first that failed, and reports the highest held.
@Suite("CapacitySearch")
struct CapacitySearchTests {
    /// A server and consumers that keep up to `limit` keys/s.
    func step(_ rate: Int, limit: Int) -> CapacitySearch.Step {
        CapacitySearch.Step(rate: rate, achieved: Double(min(rate, limit)), p50: 50, p99: rate <= limit ? 120 : 900, ok: rate <= limit)
    }

    @Test func findsTheHighestRateWithinThePrecision() async throws {
        let search = CapacitySearch(startRate: 2000)
        let result = try await search.run(target: .milliseconds(250)) { step($0, limit: 11_000) }
        #expect(result.sustainableRate <= 11_000)
        #expect(result.sustainableRate >= Int(11_000 * 0.95), "steps: \(result.steps.map(\.rate))")
        #expect(Array(result.steps.map(\.rate).prefix(5)) == [2000, 3000, 4500, 6750, 10125])
        #expect(result.steps.count <= 16)
        #expect(result.p99TargetMs == 250)
    }

    @Test func aFirstStepThatFailsHalvesTheRate() async throws {
        let result = try await CapacitySearch(startRate: 8000).run(target: .milliseconds(250)) { step($0, limit: 1500) }
        #expect(result.steps.first?.rate == 8000 && result.steps[1].rate == 4000)
        #expect(result.sustainableRate <= 1500 && result.sustainableRate >= 1400, "steps: \(result.steps.map(\.rate))")
    }

    @Test func nothingHoldsMeansZero() async throws {
        let result = try await CapacitySearch(startRate: 100).run(target: .milliseconds(250)) { step($0, limit: 0) }
        #expect(result.sustainableRate == 0)
        #expect(result.steps.last.map { $0.rate < 20 } == true)
    }

    @Test func theCeilingStopsTheRise() async throws {
        let result = try await CapacitySearch(startRate: 2000, maxRate: 5000).run(target: .milliseconds(250)) { step($0, limit: 100_000) }
        #expect(result.sustainableRate == 5000)
        #expect(result.steps.map(\.rate) == [2000, 3000, 4500, 5000])
    }

    @Test func judgeNamesWhyAStepFailed() {
        var report = ReportFixture.report(problems: [])
        report.latencyMs = ReportFixture.latency(p50: 10, p90: 20, p99: 300, p999: 400, max: 500, count: 1000)
        report.throughputKeysPerSec = 1000
        let slow = CapacitySearch.judge(rate: 1000, report: report, target: .milliseconds(250))
        #expect(!slow.ok && slow.reason?.contains("p99") == true)
        report.latencyMs.p99 = 100
        #expect(CapacitySearch.judge(rate: 1000, report: report, target: .milliseconds(250)).ok)
        report.generatorWaits = 3
        #expect(CapacitySearch.judge(rate: 1000, report: report, target: .milliseconds(250)).reason?.contains("backlog") == true)
    }
}
