import Synchronization
import RedisClient

/// What every component of a run shares: where the keys are, the scripts, the settings, and the run's
/// counters and signals.
package struct PipelineContext: Sendable {
    /// The run-level keys (meta, leases) and the run's names.
    package let keyspace: RunKeyspace
    /// The run's shards.
    package let layout: RunLayout
    package let scripts: RunScripts
    package let settings: PipelineSettings
    package let counters: RunCounters
    package let latencies: LatencyRecorder
    /// Per shard, what the trimmers sampled: lag, finished keys, entries idle past `reclaimIdle`.
    package let gauges: ShardGauges
    /// Consumers whose lease lapsed, waiting for another consumer to take their entries over.
    package let orphans: OrphanBoard
    /// When each crashed consumer died, to measure how long its entries waited.
    package let recoveries: RecoveryLog
    /// Server clock minus local clock, in ms.
    package let serverOffsetMilliseconds: Int64
    /// Redis's own expiry lag, from the probe keys the generators write beside the data keys.
    package let probes: ExpiryProbes
    /// Each stage's latencies, for a staged `--rate`; nil otherwise.
    package let stages: StageRecorder?
    /// The keys whose first commit was confirmed to this process's consumers.
    package let confirmed = ConfirmedCommits()
    /// Consumers of the run spread over the shards before this process's (see `RunLayout.shard(forConsumer:after:)`).
    package var consumerOffset = 0

    /// - Parameter layout: the run's shards; nil for one untagged shard named by `keyspace`.
    package init(keyspace: RunKeyspace, layout: RunLayout? = nil, scripts: RunScripts, settings: PipelineSettings, counters: RunCounters,
                latencies: LatencyRecorder, orphans: OrphanBoard = OrphanBoard(), recoveries: RecoveryLog = RecoveryLog(),
                serverOffsetMilliseconds: Int64) {
        let layout = layout ?? RunLayout(run: keyspace, tags: [nil])
        self.keyspace = keyspace
        self.layout = layout
        self.scripts = scripts
        self.settings = settings
        self.counters = counters
        self.latencies = latencies
        self.gauges = ShardGauges(shards: layout.shards.count)
        counters.gauges = gauges
        self.orphans = orphans
        self.recoveries = recoveries
        self.serverOffsetMilliseconds = serverOffsetMilliseconds
        self.probes = ExpiryProbes(window: settings.probeWindow)
        self.stages = settings.generator.stages.isEmpty ? nil : StageRecorder(schedule: RateSchedule(stages: settings.generator.stages), ttl: settings.generator.ttl)
    }

    /// Now, in milliseconds of the server's clock.
    package var serverNowMilliseconds: Int64 { WallClock.milliseconds() + serverOffsetMilliseconds }
}

/// What the trimmers last read of each shard, for the consumers (how much to read, when to reclaim) and for the
/// driver (how many keys every process has finished).
package final class ShardGauges: Sendable {
    package struct Gauge: Sendable {
        /// Entries not yet delivered to any consumer at the trimmer's last sample (every 100 ms); -1 if unknown.
        package var undelivered = -1
        /// Entries this process published to the shard's stream, and read from it (new entries only), so far.
        package var published = 0
        package var delivered = 0
        /// `published` and `delivered` when `undelivered` was sampled.
        var publishedAtSample = 0
        var deliveredAtSample = 0

        /// Entries not yet delivered, now: the last sample moved on by what this process published and read
        /// since (what other processes read since is not known here); -1 if unknown.
        package var backlog: Int {
            guard undelivered >= 0 else { return -1 }
            return max(0, undelivered + (published - publishedAtSample) - (delivered - deliveredAtSample))
        }

        /// Records a sample of `undelivered`, from which `backlog` counts on.
        mutating func sampled(undelivered: Int) {
            self.undelivered = undelivered
            publishedAtSample = published
            deliveredAtSample = delivered
        }
        /// Keys finished in this shard by every process (the tally's `done`).
        package var finished = 0
        /// True while some entry has been pending longer than `reclaimIdle`.
        package var idle = false
    }

    private let state: Mutex<[Gauge]>
    package init(shards: Int) { state = Mutex(Array(repeating: Gauge(), count: max(1, shards))) }

    package subscript(shard: Int) -> Gauge {
        get { state.withLock { $0[shard] } }
    }

    package func update(_ shard: Int, _ body: (inout Gauge) -> Void) { state.withLock { body(&$0[shard]) } }

    /// Keys finished by every process, over all shards.
    package var finished: Int { state.withLock { $0.reduce(0) { $0 + $1.finished } } }
}

/// Consumers presumed dead, by shard, each handed out once.
package final class OrphanBoard: Sendable {
    private let names = Mutex<[(name: String, shard: Int)]>([])
    package init() {}

    /// Adds a consumer of `shard` whose entries must be taken over (ignored if already waiting).
    package func add(_ name: String, shard: Int = 0) {
        names.withLock { if !$0.contains(where: { $0.name == name }) { $0.append((name, shard)) } }
    }

    /// True when a consumer of `shard` waits to be taken over.
    package func has(shard: Int) -> Bool { names.withLock { $0.contains { $0.shard == shard } } }

    /// Takes the next orphaned consumer of `shard`, if any.
    package func take(shard: Int = 0) -> String? {
        names.withLock { list in
            guard let at = list.firstIndex(where: { $0.shard == shard }) else { return nil }
            return list.remove(at: at).name
        }
    }
}

/// Crash times of consumers, and how long after each crash its entries were taken over.
package final class RecoveryLog: Sendable {
    private let state = Mutex((crashed: [String: ContinuousClock.Instant](), recoveries: [Duration]()))
    package init() {}

    package func crashed(_ name: String, at instant: ContinuousClock.Instant = .now) {
        state.withLock { $0.crashed[name] = instant }
    }

    /// Notes that `name`'s entries were taken over now; counts once per crash.
    package func recovered(_ name: String) {
        state.withLock { state in
            if let crash = state.crashed.removeValue(forKey: name) { state.recoveries.append(.now - crash) }
        }
    }

    /// Time from each crash to the take-over of its entries.
    package var recoveries: [Duration] { state.withLock { $0.recoveries } }
}

/// What one consumer has done, readable while it runs, and the switches chaos uses on it.
package final class ConsumerStats: Sendable {
    package let name: String
    /// The shard whose stream it reads.
    package let shard: Int
    package let processed = Atomic<Int>(0)
    /// Set by chaos: the consumer abandons its batch and dies without acking.
    package let crash = RunFlag()
    /// Set by chaos: the consumer stalls past its lock TTL before its next commit.
    package let stall = RunFlag()
    /// True while the consumer runs; its lease is renewed only then.
    package let alive = RunFlag()

    package init(name: String, shard: Int = 0) {
        self.name = name
        self.shard = shard
        alive.set()
    }
}

/// Every consumer of the run, including replacements started after a crash.
package final class ConsumerRoster: Sendable {
    private let all = Mutex<[ConsumerStats]>([])
    package init() {}

    package func add(_ stats: ConsumerStats) { all.withLock { $0.append(stats) } }
    package var members: [ConsumerStats] { all.withLock { $0 } }
    package var alive: [ConsumerStats] { members.filter(\.alive.isSet) }
}

/// Thrown inside a consumer that chaos has crashed: it stops where it is, without acking anything.
struct ConsumerCrashed: Error {}
