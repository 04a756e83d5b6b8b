import Synchronization

/// The run's shared counters. Every component adds to them; the reporter and the verdict read them.
/// All are atomics, so no lock is ever held on a hot path.
package final class RunCounters: Sendable {
    package let generated = Atomic<Int>(0)
    package let publishedByNotification = Atomic<Int>(0)
    /// Keys the sweeper published itself because their expired event never came (rescued).
    package let publishedBySweeper = Atomic<Int>(0)
    /// Keys that Redis expired because the sweeper touched them (the others it expired on its own).
    package let expiredBySweeper = Atomic<Int>(0)
    /// Keys committed for the first time (the processed bit went from 0 to 1).
    package let committed = Atomic<Int>(0)
    /// Commits of keys that were already processed: each one is a key done twice.
    package let duplicateCommits = Atomic<Int>(0)
    /// Deliveries of keys already processed, caught at claim time and acknowledged without work.
    package let duplicateDeliveries = Atomic<Int>(0)
    /// Deliveries skipped because another consumer held the key's lock.
    package let lockSkips = Atomic<Int>(0)
    /// Commits refused because the claim's lock had lapsed (the key stays pending and is redone).
    package let fencedCommits = Atomic<Int>(0)
    package let deadLettered = Atomic<Int>(0)
    /// Entries taken over from another consumer (XAUTOCLAIM).
    package let reclaimed = Atomic<Int>(0)
    package let maxUnexpired = Atomic<Int>(0)
    /// Times the generator waited because `--max-outstanding` keys were in flight.
    package let generatorWaits = Atomic<Int>(0)
    /// Failed keys handed back for another delivery.
    package let redeliveries = Atomic<Int>(0)
    /// Keys whose simulated work failed (`--fail-rate`).
    package let failedWork = Atomic<Int>(0)
    /// Faults injected by `--chaos`.
    package let chaosCrashes = Atomic<Int>(0)
    package let chaosStalls = Atomic<Int>(0)
    package let chaosSubscriberKills = Atomic<Int>(0)
    /// Consumers found dead by their lapsed lease.
    package let leaseExpiries = Atomic<Int>(0)
    /// Consumer round trips that failed and were retried.
    package let consumerErrors = Atomic<Int>(0)

    /// The shards' gauges, once a pipeline context is made: they add what other processes finished.
    private let shardGauges = Mutex<ShardGauges?>(nil)
    var gauges: ShardGauges? {
        get { shardGauges.withLock { $0 } }
        set { shardGauges.withLock { $0 = newValue } }
    }

    package init() {}

    /// Keys generated whose event has not yet been published to the stream.
    package var unexpired: Int {
        generated.load(ordering: .relaxed) - publishedByNotification.load(ordering: .relaxed) - publishedBySweeper.load(ordering: .relaxed)
    }

    /// Keys that reached their end, a first commit or a dead letter: this process's count, or every process's
    /// as last read from the shards' tallies if that is higher.
    package var finished: Int {
        max(committed.load(ordering: .relaxed) + deadLettered.load(ordering: .relaxed), gauges?.finished ?? 0)
    }

    /// Raises `maxUnexpired` to the current unexpired count if that is higher.
    package func noteUnexpired() {
        let now = unexpired
        var seen = maxUnexpired.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, original) = maxUnexpired.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { return }
            seen = original
        }
    }
}
