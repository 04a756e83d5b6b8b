import Histogram
import Synchronization

/// Deadline → commit latencies of every committed key, in microseconds, in an HdrHistogram.
///
/// Consumers record a whole batch under one short lock; readers take a copy. With `intervals`, it also keeps the
/// latencies since the last `takeInterval()` apart (for `--hdr-log`, one histogram per second).
package final class LatencyRecorder: Sendable {
    /// One hour in microseconds: the longest latency recorded as itself.
    package static let highestTrackableValue: UInt64 = 3_600_000_000
    private struct State {
        var total = LatencyRecorder.emptyHistogram()
        var interval: Histogram<UInt64>?
    }
    private let state: Mutex<State>

    package init(intervals: Bool = false) {
        state = Mutex(State(interval: intervals ? Self.emptyHistogram() : nil))
    }

    static func emptyHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: highestTrackableValue, numberOfSignificantValueDigits: .three)
    }

    /// Records latencies in microseconds; negative values (clock noise) count as 0, values past 1 h as 1 h.
    package func record(microseconds values: some Sequence<Int64>) {
        state.withLock { state in
            for value in values {
                let clamped = UInt64(min(max(value, 0), Int64(Self.highestTrackableValue)))
                _ = state.total.record(clamped)
                _ = state.interval?.record(clamped)
            }
        }
    }

    /// A copy of the histogram so far.
    package func snapshot() -> Histogram<UInt64> {
        state.withLock { $0.total }
    }

    /// The latencies recorded since the last call (and starts a new interval); nil unless made with `intervals`.
    package func takeInterval() -> Histogram<UInt64>? {
        state.withLock { state in
            guard let interval = state.interval else { return nil }
            state.interval = Self.emptyHistogram()
            return interval
        }
    }
}

/// The percentiles the report shows, in milliseconds.
package struct LatencySummary: Sendable, Codable, Equatable {
    package var p50: Double
    package var p90: Double
    package var p99: Double
    package var p999: Double
    package var max: Double
    package var count: UInt64

    package init(_ histogram: Histogram<UInt64>) {
        func ms(_ us: UInt64) -> Double { (Double(us) / 1000 * 100).rounded() / 100 }
        count = histogram.totalCount
        if count == 0 {
            p50 = 0; p90 = 0; p99 = 0; p999 = 0; max = 0
            return
        }
        p50 = ms(histogram.valueAtPercentile(50))
        p90 = ms(histogram.valueAtPercentile(90))
        p99 = ms(histogram.valueAtPercentile(99))
        p999 = ms(histogram.valueAtPercentile(99.9))
        max = ms(histogram.maxRecorded)
    }
}

extension LatencyRecorder {
    /// The recorded values as (value µs, count) pairs, for another process to merge.
    package func recordedPairs() -> [[UInt64]] {
        snapshot().recordedValues().map { [$0.value, UInt64($0.count)] }
    }

    /// Adds (value µs, count) pairs recorded by another process.
    package func merge(pairs: [[UInt64]]) {
        state.withLock { state in
            for pair in pairs where pair.count == 2 {
                _ = state.total.record(min(pair[0], Self.highestTrackableValue), count: pair[1])
            }
        }
    }
}
