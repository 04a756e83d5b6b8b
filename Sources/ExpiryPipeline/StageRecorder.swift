import Histogram
import Synchronization

/// The figures of each stage of a staged run (`--rate 2000:10s,8000:10s`): a committed key counts for the
/// stage that generated it (its deadline minus the TTL, against the generation's start), so that each stage
/// shows the latency of its own rate even while the next stage's keys are already arriving.
package final class StageRecorder: Sendable {
    package let schedule: RateSchedule
    package let ttlMilliseconds: Int64
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

    /// Each stage's latencies so far.
    package var histogramsSnapshot: [Histogram<UInt64>] { histograms.withLock { $0 } }
}

