import Histogram
import ExpiryPipeline

extension StageRecorder {
    /// Each stage's figures; `samples` (the per-second series) give the processing rate while its keys were due.
    package func figures(samples: [StatsReporter.Sample]) -> [RunReport.Stage] {
        let snapshot = histogramsSnapshot
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
    }
}
