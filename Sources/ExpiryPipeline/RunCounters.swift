import Synchronization
import Foundation

/// The run's counters, as one value: what `RunCounters` holds while the run goes, what a consumer process reports
/// to its driver (JSON in the run's meta hash, snake_case by the encoder) and what the report is built from. A new
/// counter is a new field here, and nothing else: taking a snapshot, adding a process's figures and encoding
/// them all go through this type.
package struct RunFigures: Sendable, Codable, Equatable {
    package var generated = 0
    package var publishedByNotification = 0
    /// Keys the sweeper published itself because their expired event never came (rescued).
    package var publishedBySweeper = 0
    /// Keys that Redis expired because the sweeper touched them (the others it expired on its own).
    package var expiredBySweeper = 0
    /// Keys committed for the first time (the processed bit went from 0 to 1).
    package var committed = 0
    /// Commits of keys that were already processed: each one is a key done twice.
    package var duplicateCommits = 0
    /// First commits confirmed to this process for a key whose first commit it had already been confirmed: Redis
    /// lost the earlier one (a failover before replication) and the key was done again, as a first commit.
    package var confirmedTwice = 0
    /// Keys whose deadline had already passed when Redis executed their write (the server's `TIME` in the
    /// generator's transaction): the generator fell that far behind. Redis expires such a key at once and raises
    /// `expired`; Valkey 8.1 and 9.1 raise no event for it (`bench/expiry-events`), so only the sweeper finds it.
    package var bornExpired = 0
    /// Deliveries of keys already processed, caught at claim time and acknowledged without work.
    package var duplicateDeliveries = 0
    /// Deliveries skipped because another consumer held the key's lock.
    package var lockSkips = 0
    /// Commits refused because the claim's lock had lapsed (the key stays pending and is redone).
    package var fencedCommits = 0
    package var deadLettered = 0
    /// Entries taken over from another consumer (XAUTOCLAIM).
    package var reclaimed = 0
    /// The most keys generated but not yet published at once (a peak: added as a maximum).
    package var maxUnexpired = 0
    /// Times the generator waited because `--max-outstanding` keys were in flight.
    package var generatorWaits = 0
    /// Those of the waits during most of which more of the keys in flight waited for the consumers (published,
    /// not finished) than for their expiry (not yet published): the generator held back by the consumers.
    package var generatorWaitsOnConsumers = 0
    /// Failed keys handed back for another delivery.
    package var redeliveries = 0
    /// Keys whose simulated work failed (`--fail-rate`).
    package var failedWork = 0
    /// Faults injected by `--chaos`.
    package var chaosCrashes = 0
    package var chaosStalls = 0
    package var chaosSubscriberKills = 0
    /// Consumers found dead by their lapsed lease.
    package var leaseExpiries = 0
    /// Consumer round trips that failed and were retried.
    package var consumerErrors = 0
    /// Settle round trips of the consumers (commits, redeliveries and dead letters of a batch or a part of it):
    /// keys processed per settle is how well the batches fill.
    package var settles = 0

    package init() {}

    /// Keys generated whose event has not yet been published to the stream.
    package var unexpired: Int { generated - publishedByNotification - publishedBySweeper }

    /// Counts `count` keys generated, and raises `maxUnexpired` to the unexpired count if that is higher.
    package mutating func generated(_ count: Int) {
        generated += count
        maxUnexpired = max(maxUnexpired, unexpired)
    }

    /// The figures of two processes together: counts add up, peaks take the higher.
    package static func + (lhs: RunFigures, rhs: RunFigures) -> RunFigures {
        var sum = lhs
        for field in additive { sum[keyPath: field] += rhs[keyPath: field] }
        sum.maxUnexpired = max(lhs.maxUnexpired, rhs.maxUnexpired)
        return sum
    }

    /// Every field that adds up (all but the peak `maxUnexpired`). `figuresAddUpFieldByFieldAndEveryFieldIsListed` in the tests checks that
    /// this list and the encoded fields agree.
    package static let additive: [WritableKeyPath<RunFigures, Int> & Sendable] = [
        \.generated, \.publishedByNotification, \.publishedBySweeper, \.expiredBySweeper, \.committed, \.duplicateCommits, \.confirmedTwice, \.bornExpired,
        \.duplicateDeliveries, \.lockSkips, \.fencedCommits, \.deadLettered, \.reclaimed, \.generatorWaits, \.generatorWaitsOnConsumers, \.redeliveries,
        \.failedWork, \.chaosCrashes, \.chaosStalls, \.chaosSubscriberKills, \.leaseExpiries, \.consumerErrors, \.settles,
    ]

}

/// JSON with snake_case names from Swift's camelCase ones (the encoder's, not written by hand), for the values
/// kept in the run's meta hash.
package enum SnakeCaseJSON {
    package static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    package static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    /// `value` as JSON text, as the meta hash keeps it ("{}" if it cannot be encoded).
    package static func text(of value: some Encodable) -> String {
        (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// The value JSON `text` holds; nil if it is not one.
    package static func value<T: Decodable>(_ type: T.Type, from text: String) -> T? {
        try? decoder.decode(type, from: Data(text.utf8))
    }
}

/// The run's shared counters: every component adds to them, the reporter and the verdict read them. One lock over
/// one `RunFigures`; components add once per batch, never per key, so it is never held long or often.
package final class RunCounters: Sendable {
    private let figures = Mutex(RunFigures())

    /// The shards' gauges, once a pipeline context is made: they add what other processes finished.
    private let shardGauges = Mutex<ShardGauges?>(nil)
    var gauges: ShardGauges? {
        get { shardGauges.withLock { $0 } }
        set { shardGauges.withLock { $0 = newValue } }
    }

    package init() {}

    /// Adds `amount` to one counter.
    package func add(_ field: WritableKeyPath<RunFigures, Int>, _ amount: Int = 1) {
        figures.withLock { $0[keyPath: field] += amount }
    }

    /// Changes several counters under one lock (a batch's outcome).
    package func update(_ body: (inout RunFigures) -> Void) {
        figures.withLock { body(&$0) }
    }

    /// Adds another process's figures (counts add up, peaks take the higher).
    package func add(_ other: RunFigures) {
        figures.withLock { $0 = $0 + other }
    }

    /// One counter's value now.
    package subscript(_ field: KeyPath<RunFigures, Int>) -> Int {
        figures.withLock { $0[keyPath: field] }
    }

    /// Every counter, read at one instant.
    package func snapshot() -> RunFigures {
        figures.withLock { $0 }
    }

    /// Keys generated whose event has not yet been published to the stream.
    package var unexpired: Int { figures.withLock { $0.unexpired } }

    /// Keys that reached their end, a first commit or a dead letter: this process's count, or every process's
    /// as last read from the shards' tallies if that is higher.
    package var finished: Int {
        max(figures.withLock { $0.committed + $0.deadLettered }, gauges?.finished ?? 0)
    }
}
