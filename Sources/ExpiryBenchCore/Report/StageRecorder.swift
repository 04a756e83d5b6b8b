import Histogram
import Synchronization

/// The figures of each stage of a staged run (`--rate 2000:10s,8000:10s`): a committed key counts for the
/// stage that generated it (its deadline minus the TTL, against the generation's start), so that each stage
/// shows the latency of its own rate even while the next stage's keys are already arriving.
package final class StageRecorder: Sendable {
    let schedule: RateSchedule
    let ttlMilliseconds: Int64
    /// When generation started, on the server's clock (ms); 0 until `begin`.
    private let startMilliseconds = Atomic<Int64>(0)
    private let histograms: Mutex<[Histogram<UInt64>]>

    package init(schedule: RateSchedule, ttl: Duration) {
        self.schedule = schedule
        self.ttlMilliseconds = Int64(ttl.milliseconds)
        self.histograms = Mutex(schedule.stages.map { _ in
            Histogram<UInt64>(highestTrackableValue: LatencyRecorder.highestTrackableValue, numberOfSignificantValueDigits: .three)
        })
    }

    /// Marks the start of generation (server clock, ms): the origin of the stages.
    package func begin(serverMilliseconds: Int64) { startMilliseconds.store(serverMilliseconds, ordering: .relaxed) }

    /// Records committed keys: their deadlines (server ms) and deadline → commit latencies (µs).
    package func record(deadlines: [Int64], microseconds: [Int64]) {
        let start = startMilliseconds.load(ordering: .relaxed)
        let stages = deadlines.map { schedule.stage(at: Double($0 - ttlMilliseconds - start) / 1000) }
        histograms.withLock { histograms in
            for (stage, value) in zip(stages, microseconds) {
                _ = histograms[stage].record(UInt64(min(max(value, 0), Int64(LatencyRecorder.highestTrackableValue))))
            }
        }
    }

    /// Each stage's figures; `samples` (the per-second series) give the processing rate while its keys were due.
    package func figures(samples: [StatsReporter.Sample]) -> [RunReport.Stage] {
        let snapshot = histograms.withLock { $0 }
        let ttl = Double(ttlMilliseconds) / 1000
        return schedule.stages.enumerated().map { index, stage in
            let histogram = snapshot[index]
            let from = schedule.start(of: index) + ttl
            let to = from + stage.duration.seconds
            let during = samples.filter { $0.elapsed > from && $0.elapsed <= to + 0.5 }
            let summary = LatencySummary(histogram)
            return RunReport.Stage(rate: stage.rate, durationSec: stage.duration.seconds, keys: stage.keys, committed: Int(histogram.totalCount),
                                   achieved: (Double(histogram.totalCount) / stage.duration.seconds).rounded(),
                                   processedPerSec: during.isEmpty ? 0 : (during.map(\.rate).reduce(0, +) / Double(during.count)).rounded(),
                                   latencyMs: summary)
        }
    }
}

extension RunReport {
    /// One stage of a staged run: JSON `stages` [{`rate`, `duration_sec`, `keys`, `committed`, `achieved`,
    /// `processed_per_sec`, `latency_ms`}].
    package struct Stage: Sendable, Codable, Equatable {
        /// The stage's target rate (keys/s) and how long it lasted.
        package var rate: Int
        package var durationSec: Double
        /// Keys the stage was to generate, and those of them committed.
        package var keys: Int
        package var committed: Int
        /// Committed keys of the stage per second of the stage: the arrival rate it achieved.
        package var achieved: Double
        /// Mean of the per-second processing rate while the stage's keys were due.
        package var processedPerSec: Double
        /// Deadline → commit of the stage's keys.
        package var latencyMs: LatencySummary

        enum CodingKeys: String, CodingKey {
            case rate, keys, committed, achieved
            case durationSec = "duration_sec"
            case processedPerSec = "processed_per_sec"
            case latencyMs = "latency_ms"
        }
    }
}
