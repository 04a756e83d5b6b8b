import Histogram
import Synchronization

/// Deadline → commit latencies of every committed key, in microseconds, in an HdrHistogram.
///
/// Consumers record a whole batch under one short lock; readers take a copy.
public final class LatencyRecorder: Sendable {
    /// One hour in microseconds: the longest latency recorded as itself.
    public static let highestTrackableValue: UInt64 = 3_600_000_000
    private let histogram = Mutex(Histogram<UInt64>(highestTrackableValue: LatencyRecorder.highestTrackableValue, numberOfSignificantValueDigits: .three))

    public init() {}

    /// Records latencies in microseconds; negative values (clock noise) count as 0, values past 1 h as 1 h.
    public func record(microseconds values: some Sequence<Int64>) {
        histogram.withLock { histogram in
            for value in values {
                _ = histogram.record(UInt64(min(max(value, 0), 3_600_000_000)))
            }
        }
    }

    /// A copy of the histogram so far.
    public func snapshot() -> Histogram<UInt64> {
        histogram.withLock { $0 }
    }
}

/// The percentiles the report shows, in milliseconds.
public struct LatencySummary: Sendable, Codable, Equatable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var count: UInt64

    public init(_ histogram: Histogram<UInt64>) {
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
    public func recordedPairs() -> [[UInt64]] {
        snapshot().recordedValues().map { [$0.value, UInt64($0.count)] }
    }

    /// Adds (value µs, count) pairs recorded by another process.
    public func merge(pairs: [[UInt64]]) {
        histogram.withLock { histogram in
            for pair in pairs where pair.count == 2 {
                _ = histogram.record(min(pair[0], Self.highestTrackableValue), count: pair[1])
            }
        }
    }
}
