import Prometheus
import ExpiryPipeline
import Synchronization

/// `--metrics-port`: a run's figures as Prometheus metrics, for runs long enough to watch. Counters and gauges
/// follow the per-second sample; the latency histogram is fed on every commit.
package final class RunMetrics: Sendable {
    /// The registry the metrics endpoint serves.
    package let registry = PrometheusCollectorRegistry()
    private let generated: Counter
    private let processed: Counter
    private let rate: Gauge
    private let unexpired: Gauge
    private let pending: Gauge
    private let streamLength: Gauge
    private let latency: ValueHistogram
    /// Fault and recovery counters, each fed from the run's counter of the same meaning.
    private let faults: [(counter: Counter, field: KeyPath<RunFigures, Int> & Sendable)]
    /// What the counters had reached at the last update, in the order: generated, processed, then `faults`.
    private let last = Mutex<[Int]>([])

    package init() {
        let registry = self.registry
        generated = registry.makeCounter(name: "expiry_bench_keys_generated_total", help: "Keys written with their TTL.")
        processed = registry.makeCounter(name: "expiry_bench_keys_processed_total", help: "Keys committed or dead-lettered.")
        rate = registry.makeGauge(name: "expiry_bench_processed_keys_per_second", help: "Keys finished in the last second.")
        unexpired = registry.makeGauge(name: "expiry_bench_backlog_unexpired_keys", help: "Keys generated and not yet published to the stream.")
        pending = registry.makeGauge(name: "expiry_bench_backlog_pending_entries", help: "Stream entries delivered and not yet acknowledged.")
        streamLength = registry.makeGauge(name: "expiry_bench_stream_length", help: "Entries in the run's streams.")
        latency = registry.makeValueHistogram(name: "expiry_bench_deadline_to_commit_seconds",
                                              buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
                                              help: "From a key's deadline (its expiry) to its commit.")
        let fault = { (name: String, help: String, field: KeyPath<RunFigures, Int> & Sendable) in
            (counter: registry.makeCounter(name: "expiry_bench_\(name)_total", help: help), field: field)
        }
        faults = [
            fault("chaos_crashes", "Consumers crashed by --chaos.", \.chaosCrashes),
            fault("chaos_stalls", "Consumers stalled by --chaos.", \.chaosStalls),
            fault("chaos_subscriber_kills", "Subscriber connections killed by --chaos.", \.chaosSubscriberKills),
            fault("consumer_errors", "Consumer calls that failed and were retried.", \.consumerErrors),
            fault("redeliveries", "Keys handed back for another delivery.", \.redeliveries),
            fault("failed_work", "Keys whose simulated work failed.", \.failedWork),
            fault("reclaimed", "Entries taken over from another consumer.", \.reclaimed),
            fault("lease_expiries", "Consumer leases that lapsed.", \.leaseExpiries),
            fault("rescued", "Keys the sweeper published because no expired event came.", \.publishedBySweeper),
            fault("duplicate_commits", "Commits of keys already processed (must stay 0).", \.duplicateCommits),
        ]
    }

    /// Records committed keys' deadline → commit latencies (µs).
    func record(microseconds: [Int64]) {
        for value in microseconds { latency.record(Double(max(0, value)) / 1_000_000) }
    }

    /// Brings counters and gauges up to the run's figures (once a second).
    func update(counters: RunCounters, sample: StatsReporter.Sample) {
        let figures = counters.snapshot()
        let now = [figures.generated, sample.processed] + faults.map { figures[keyPath: $0.field] }
        let before = last.withLock { last in
            defer { last = now }
            return last.isEmpty ? Array(repeating: 0, count: now.count) : last
        }
        let targets = [generated, processed] + faults.map(\.counter)
        for (index, counter) in targets.enumerated() where now[index] > before[index] {
            counter.increment(by: Int64(now[index] - before[index]))
        }
        rate.set(sample.rate)
        unexpired.set(Double(sample.unexpired))
        pending.set(Double(max(0, sample.pending)))
        streamLength.set(Double(max(0, sample.streamLength)))
    }
}
