import Foundation
import Histogram
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

/// A histogram shaped like the recorder's: microseconds up to one hour, three significant digits.
private func makeHistogram(_ microseconds: [UInt64]) -> Histogram<UInt64> {
    var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    for value in microseconds { _ = histogram.record(value) }
    return histogram
}

/// True when `actual` is within HdrHistogram's three-digit precision (0.1%) of `expected`, plus the 0.01ms rounding.
private func close(_ actual: Double, _ expected: Double) -> Bool {
    abs(actual - expected) <= expected * 0.001 + 0.01
}

@Suite("LatencySummary and LatencyRecorder")
struct LatencyTests {
    @Test func emptyHistogramIsAllZero() {
        let summary = LatencySummary(makeHistogram([]))
        #expect(summary == LatencySummary(makeHistogram([])))
        #expect(summary.count == 0)
        #expect([summary.p50, summary.p90, summary.p99, summary.p999, summary.max] == [0, 0, 0, 0, 0])
    }

    @Test func microsecondsInMillisecondsOut() {
        // 1µs ... 1000µs, all exactly representable at three significant digits.
        let summary = LatencySummary(makeHistogram(Array(1...1000)))
        #expect(summary.count == 1000)
        #expect(summary.p50 == 0.5)
        #expect(summary.p90 == 0.9)
        #expect(summary.p99 == 0.99)
        #expect(summary.p999 == 1.0)   // 999µs, rounded to two decimals
        #expect(summary.max == 1.0)
    }

    @Test func skewedDistribution() {
        let values = Array(repeating: UInt64(1_000), count: 500) + Array(repeating: 1_500, count: 400)
            + Array(repeating: 2_000, count: 90) + Array(repeating: 2_040, count: 9) + [2_047]
        let summary = LatencySummary(makeHistogram(values.shuffled()))
        #expect(summary.count == 1000)
        #expect(summary.p50 == 1.0)
        #expect(summary.p90 == 1.5)
        #expect(summary.p99 == 2.0)
        #expect(summary.p999 == 2.04)
        #expect(summary.max == 2.05)   // 2.047ms rounded to two decimals
    }

    @Test func millisecondScaleValuesWithinHistogramPrecision() {
        // 1ms, 2ms, ..., 100ms.
        let summary = LatencySummary(makeHistogram((1...100).map { UInt64($0) * 1000 }))
        #expect(summary.count == 100)
        #expect(close(summary.p50, 50), "p50 \(summary.p50)")
        #expect(close(summary.p90, 90), "p90 \(summary.p90)")
        #expect(close(summary.p99, 99), "p99 \(summary.p99)")
        #expect(close(summary.p999, 100), "p99.9 \(summary.p999)")
        #expect(close(summary.max, 100), "max \(summary.max)")
        #expect(summary.p50 <= summary.p90 && summary.p90 <= summary.p99 && summary.p99 <= summary.p999 && summary.p999 <= summary.max)
    }

    @Test func valuesAreRoundedToHundredthsOfAMillisecond() {
        let summary = LatencySummary(makeHistogram([1_234]))   // 1.234ms
        #expect(summary.p50 == 1.23)
        #expect(summary.max == 1.23)
        #expect(summary.count == 1)
    }

    @Test
    func maxIsTheLargestRecordedValue() {
        let summary = LatencySummary(makeHistogram([250_000]))   // exactly 250ms
        #expect(summary.p50 == 250)
        #expect(summary.max == 250)
    }

    // MARK: LatencyRecorder

    @Test func recorderClampsNegativeValuesToZero() {
        let recorder = LatencyRecorder()
        recorder.record(microseconds: [-250, -1, 0, 3_000])
        let snapshot = recorder.snapshot()
        #expect(snapshot.totalCount == 4)
        #expect(snapshot.min == 0)
        #expect(snapshot.countForValue(0) == 3)
        #expect(snapshot.maxRecorded == 3_000)
        let summary = LatencySummary(snapshot)
        #expect(summary.p50 == 0)
        #expect(summary.max == 3.0)
    }

    @Test func recorderClampsHugeValuesToOneHour() {
        let recorder = LatencyRecorder()
        recorder.record(microseconds: [Int64.max, 5_000_000_000])
        let snapshot = recorder.snapshot()
        #expect(snapshot.totalCount == 2)
        #expect(snapshot.maxRecorded == 3_600_000_000)
        #expect(close(LatencySummary(snapshot).p50, 3_600_000))
    }

    @Test func snapshotIsACopy() {
        let recorder = LatencyRecorder()
        recorder.record(microseconds: [100, 200])
        let before = recorder.snapshot()
        recorder.record(microseconds: [300])
        #expect(before.totalCount == 2)
        #expect(recorder.snapshot().totalCount == 3)
        #expect(recorder.snapshot().maxRecorded == 300)
    }

    @Test func recorderAcceptsConcurrentBatches() async {
        let recorder = LatencyRecorder()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask { recorder.record(microseconds: (0..<1000).map { Int64(task * 1000 + $0) }) }
            }
        }
        let snapshot = recorder.snapshot()
        #expect(snapshot.totalCount == 8000)
        #expect(snapshot.maxRecorded == 7999)
    }

    @Test func summaryRoundTripsThroughJSON() throws {
        let summary = LatencySummary(makeHistogram(Array(1...1000)))
        let data = try JSONEncoder().encode(summary)
        #expect(try JSONDecoder().decode(LatencySummary.self, from: data) == summary)
    }
}
