import Synchronization

/// What every component of a run shares: where the keys are, the scripts, the settings, and the run's
/// counters and signals.
public struct PipelineContext: Sendable {
    public let keyspace: RunKeyspace
    public let scripts: RunScripts
    public let configuration: RunConfiguration
    public let counters: RunCounters
    public let latencies: LatencyRecorder
    /// Raised by the reporter while some entry has been pending longer than `reclaimIdle`.
    public let idleEntries: RunFlag
    /// Consumers whose lease lapsed, waiting for another consumer to take their entries over.
    public let orphans: OrphanBoard
    /// When each crashed consumer died, to measure how long its entries waited.
    public let recoveries: RecoveryLog
    /// Server clock minus local clock, in ms.
    public let serverOffsetMilliseconds: Int64

    /// Now, in milliseconds of the server's clock.
    public var serverNowMilliseconds: Int64 { WallClock.milliseconds() + serverOffsetMilliseconds }
}

/// Names of consumers presumed dead, each handed out once.
public final class OrphanBoard: Sendable {
    private let names = Mutex<[String]>([])
    public init() {}

    /// Adds a consumer whose entries must be taken over (ignored if already waiting).
    public func add(_ name: String) {
        names.withLock { if !$0.contains(name) { $0.append(name) } }
    }

    /// Takes the next orphaned consumer, if any.
    public func take() -> String? {
        names.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }

}

/// Crash times of consumers, and how long after each crash its entries were taken over.
public final class RecoveryLog: Sendable {
    private let state = Mutex((crashed: [String: ContinuousClock.Instant](), recoveries: [Duration]()))
    public init() {}

    public func crashed(_ name: String, at instant: ContinuousClock.Instant = .now) {
        state.withLock { $0.crashed[name] = instant }
    }

    /// Notes that `name`'s entries were taken over now; counts once per crash.
    public func recovered(_ name: String) {
        state.withLock { state in
            if let crash = state.crashed.removeValue(forKey: name) { state.recoveries.append(.now - crash) }
        }
    }

    /// Time from each crash to the take-over of its entries.
    public var recoveries: [Duration] { state.withLock { $0.recoveries } }
}

/// What one consumer has done, readable while it runs, and the switches chaos uses on it.
public final class ConsumerStats: Sendable {
    public let name: String
    public let processed = Atomic<Int>(0)
    /// Set by chaos: the consumer abandons its batch and dies without acking.
    public let crash = RunFlag()
    /// Set by chaos: the consumer stalls past its lock TTL before its next commit.
    public let stall = RunFlag()
    /// True while the consumer runs; its lease is renewed only then.
    public let alive = RunFlag()

    public init(name: String) {
        self.name = name
        alive.set()
    }
}

/// Every consumer of the run, including replacements started after a crash.
public final class ConsumerRoster: Sendable {
    private let all = Mutex<[ConsumerStats]>([])
    public init() {}

    public func add(_ stats: ConsumerStats) { all.withLock { $0.append(stats) } }
    public var members: [ConsumerStats] { all.withLock { $0 } }
    public var alive: [ConsumerStats] { members.filter(\.alive.isSet) }
}

/// Thrown inside a consumer that chaos has crashed: it stops where it is, without acking anything.
struct ConsumerCrashed: Error {}
