import Foundation
import ExpiryPipeline
import RedisClient

/// The final report of a run: what the checks read (`--json`) and what the terminal report prints.
///
/// Two values: the run's counters (`figures`, one `RunFigures`, with the figures verified in Redis in place of the
/// client's own counts where they differ) and everything else (`findings`). Both read as the report's own fields
/// (`report.verdict`, `report.lockSkips`). In the JSON, every field is named by the encoder (snake_case of the
/// Swift name, `ReportFile`) and the counters are top-level fields, but for those the report shows in another
/// form (`RunFigures.shownElsewhere`): a new counter in `RunFigures` is in the report with nothing else written.
/// The names follow NOTES.md section 5 and stay stable.
@dynamicMemberLookup
package struct RunReport: Sendable, Encodable {
    package var findings: Findings
    package var figures: RunFigures

    package init(_ findings: Findings, figures: RunFigures) {
        self.findings = findings
        self.figures = figures
    }

    package subscript<T>(dynamicMember path: WritableKeyPath<Findings, T>) -> T {
        get { findings[keyPath: path] }
        set { findings[keyPath: path] = newValue }
    }

    package subscript(dynamicMember path: WritableKeyPath<RunFigures, Int>) -> Int {
        get { figures[keyPath: path] }
        set { figures[keyPath: path] = newValue }
    }

    package func encode(to encoder: any Encoder) throws {
        try findings.encode(to: encoder)
        try figures.encodeReported(to: encoder, unknown: Set(findings.unknown?.keys.map { $0 } ?? []))
    }

    /// A figure as the text report shows it: the count, or "unknown (why)" when `field` (its JSON name) is unknown.
    package func shown(_ field: String, _ value: Int?) -> String {
        if let reason = findings.unknown?[field] { return "unknown (\(reason))" }
        return value.map { Format.count($0) } ?? "unknown"
    }

    package enum Verdict: String, Sendable, Codable {
        case exactlyOnce = "exactly-once"
        case failed
        case interrupted
    }

    package struct Consumer: Sendable, Codable, Equatable {
        package var name: String
        package var processed: Int
        package var share: Double
    }

    /// Everything in the report but the counters.
    package struct Findings: Sendable, Encodable {
        package var verdict: Verdict
        /// Why the verdict is not exactly-once: each problem found, in words.
        package var problems: [String]
        package var runID: String
        package var redis: String
        /// The Redis version the server reports for compatibility (`redis_version`; 7.2.4 on any Valkey).
        package var redisVersion: String
        /// The server as it names itself: JSON `server` {`name`, `version`}.
        package var server: ServerIdentity
        package var keysRequested: Int
        package var keysGenerated: Int
        /// Keys whose processed bit is set in Redis at the end (BITCOUNT), the source of truth; nil (JSON null)
        /// when Redis could not be read (`unknown` says why).
        @NullWhenUnknown package var keysProcessed: Int?
        /// First commits confirmed to the consumers of every process that reported: the clients' own count.
        package var keysProcessedByClients = 0
        /// Generated keys whose commit or entry Redis no longer holds (or whose confirmed commit it lost).
        @NullWhenUnknown package var lost: Int?
        /// Generated keys not processed when the run stopped but still in Redis (due, pending, undelivered).
        @NullWhenUnknown package var unprocessed: Int?
        @NullWhenUnknown package var pendingAtEnd: Int?
        @NullWhenUnknown package var dueAtEnd: Int?
        /// Why figures are unknown, by JSON field name; nil (absent) when every figure was read.
        package var unknown: [String: String]?
        package var subscriberReconnects: Int
        /// Reconnections of every other connection of the run.
        package var connectionReconnects: Int
        /// `--wait-replicas`: round trips of this process whose writes the replicas did not confirm within
        /// `--timeout`, each tried again on a new connection; absent without `--wait-replicas`.
        package var unconfirmedWrites: Int?
        /// Replicas of the primary that the run's writes did not wait for (beyond `--wait-replicas`): the verdict
        /// was checked on the primary, and they may lack its last writes. Absent when none (or on a cluster).
        package var replicasNotChecked: Int?
        package var chaos: Chaos
        /// Each failover the run heard of (a sentinel's `+switch-master`, a cluster primary's slots gone to its
        /// replica); nil (absent) when the run could hear of none: a single server named directly.
        package var failovers: [Failover]?
        package var durationSec: Double
        package var throughputKeysPerSec: Double
        /// Keys committed more than `lateAfterMs` after their deadline.
        package var lateKeys: Int
        package var lateAfterMs: Double
        package var maxStreamLength: Int
        package var latencyMs: LatencySummary
        /// Each stage of a staged `--rate`; nil (absent) for one rate.
        package var stages: [Stage]?
        /// `--threshold` results; nil (absent) when none was given.
        package var thresholds: [ThresholdResult]?
        package var settings: Settings
        package var consumers: [Consumer]
        /// The run's shards: where each was and how many keys it processed.
        package var shards: [Shard] = []
        /// Consumer processes (`--role consumer`) that joined the run, and how many of them reported back.
        package var consumerProcesses = 0
        package var consumerProcessesReported = 0
        /// Who made Redis expire the published keys: its own expiry cycle, or the sweeper's touch.
        package var expiredBy = ExpiredBy()
        /// How late this server's own expired events were during the run (the probes, which nothing touches).
        package var expiryLagMs = ExpiryLag(p50: 0, p90: 0, p99: 0, max: 0, count: 0, missing: 0, windowMs: 0)
        /// True when the generator was held back by the consumers (`RunReport.saturated`): latency is then mostly
        /// queueing, and a lower rate is the remedy.
        package var saturated = false
        /// The run's own keys with a TTL beside its data keys, at their peaks.
        package var footprint = Footprint()
        /// Keys Redis evicted during the run (`evicted_keys` of INFO stats at the end less at the start, summed
        /// over the primaries); null when it could not be read (`unknown` says why).
        @NullWhenUnknown package var evictedKeysDuringRun: Int? = nil
        /// The primaries' `maxmemory-policy` during the run ("a → b" if it changed); null when it could not be read.
        @NullWhenUnknown package var maxmemoryPolicy: String? = nil
        /// Redis CPU (INFO cpu, every primary) per key finished, in µs, and as a share of one core over the run
        /// (`RedisCPU`); null when INFO cpu could not be read.
        @NullWhenUnknown package var redisCpuUsPerKey: Double? = nil
        @NullWhenUnknown package var redisCpuShare: Double? = nil
    }

    /// Who made Redis expire a key (every published key was expired by one of them).
    package struct ExpiredBy: Sendable, Codable, Equatable {
        package var redis = 0
        package var sweeper = 0
        package init(redis: Int = 0, sweeper: Int = 0) {
            self.redis = redis
            self.sweeper = sweeper
        }
    }

    /// Whether the run was saturated: the generator was held back by the consumers, and nothing else slowed it.
    /// Held back by the consumers: at least half of its waits at `--max-outstanding` were spent mostly with more
    /// keys waiting for the consumers (in the stream) than for their expiry (`generatorWaitsOnConsumers`; checked
    /// every millisecond of a wait), so that a lower
    /// rate, not the server, is the remedy. Nothing else: the run did not stall, no component failed, no failover
    /// happened, and no consumer round trip failed (an outage slows the consumers without them being the limit).
    package static func saturated(_ figures: RunFigures, stalled: Bool, failed: Bool, failovers: Int) -> Bool {
        figures.generatorWaitsOnConsumers > 0 && figures.generatorWaitsOnConsumers * 2 >= figures.generatorWaits
            && !stalled && !failed && failovers == 0 && figures.consumerErrors == 0
    }

    /// For a saturated run: a rate a little under the one reached, at which keys should be processed on time.
    package var suggestedRate: Int {
        let target = findings.throughputKeysPerSec * 0.9
        guard target >= 10 else { return max(1, Int(target)) }
        let scale = pow(10, floor(log10(target)) - 1)
        return Int((target / scale).rounded(.down) * scale)
    }

    /// One shard of the run.
    package struct Shard: Sendable, Codable, Equatable {
        /// The shard's hash tag ("-" for the untagged single shard).
        package var name: String
        /// The server or cluster primary holding it.
        package var node: String
        package var keysProcessed: Int

        package init(name: String, node: String, keysProcessed: Int) {
            self.name = name
            self.node = node
            self.keysProcessed = keysProcessed
        }

    }

    /// One failover during the run, and what it cost.
    package struct Failover: Sendable, Codable, Equatable {
        /// When the switch was heard, in ms since the run's start.
        package var atMs: Double
        /// How it was heard: `sentinel` or `cluster`.
        package var via: String
        /// The old and the new primary, `host:port`.
        package var from: String
        package var to: String
        /// From the first call that failed on the old primary until every connection interrupted had a call
        /// through again on the new one; 0 when no call failed.
        package var writesUnavailableMs: Double
        /// From the same first failure to the first call through on the new primary.
        package var firstWriteBackMs: Double
        /// The run's connections (in this process) whose calls failed meanwhile.
        package var connectionsInterrupted: Int
        /// Keys the sweeper published itself after it (their expired event was lost) until the next failover.
        package var keysRescued: Int
        /// The run's lost keys and repeated commits when it had this one failover; nil (absent) when it had more.
        package var lost: Int?
        package var duplicateCommits: Int?
    }

    /// Faults injected (`--chaos`) and how the run recovered from them.
    package struct Chaos: Sendable, Codable, Equatable {
        package var crashes: Int
        package var stalls: Int
        package var subscriberKills: Int
        /// Consumers found dead because their lease lapsed.
        package var leaseExpiries: Int
        /// Crashes whose entries were taken over, and how long after the crash (ms).
        package var recoveries: Int
        package var recoveryMaxMs: Double
        package var recoveryMeanMs: Double
        /// `--chaos failover`: when it was asked (ms since the run's start), of which node, and its answer; nil
        /// (absent) when it was not (not asked for, or the run ended first).
        package var failoverAskedAtMs: Double?
        package var failoverAskedOf: String?
        package var failoverAnswer: String?
    }

    package struct Settings: Sendable, Codable {
        package var consumers: Int
        package var ttlMs: Double
        package var workMs: Double
        package var lockTtlMs: Double
        package var rate: Int
        package var batch: Int
        package var concurrency: Int
        package var maxOutstanding: Int
        package var sweeper: Bool
        package var graceMs: Double
        package var failRate: Double
        package var maxDeliveries: Int
        package var chaos: Bool
        package var backgroundKeys: Int
        package var rescueAfterMs: Double = 0
        package var probeWindowMs: Double = 0
        package var waitReplicas = 0
        /// `--chaos failover`.
        package var chaosFailover = false
    }

}

extension RunFigures {
    /// The counters the report shows in another form, by their JSON names, and not as top-level fields: keys
    /// generated (`keys_generated`), first commits (`keys_processed` is Redis's count, `keys_processed_by_clients`
    /// every process's), keys the sweeper made Redis expire (`expired_by`), and chaos's faults (`chaos`).
    static let shownElsewhere: Set<String> = [
        "generated", "committed", "expired_by_sweeper", "chaos_crashes", "chaos_stalls", "chaos_subscriber_kills", "lease_expiries",
    ]

    /// The counters as top-level fields of the report's JSON, named by the same encoder as everything else; a
    /// counter named in `unknown` (one the verification could not read in Redis) is null.
    func encodeReported(to encoder: any Encoder, unknown: Set<String> = []) throws {
        let fields = try JSONSerialization.jsonObject(with: SnakeCaseJSON.encoder.encode(self)) as? [String: Int] ?? [:]
        var container = encoder.container(keyedBy: FieldName.self)
        for (name, value) in fields where !Self.shownElsewhere.contains(name) {
            if unknown.contains(name) {
                try container.encodeNil(forKey: FieldName(name))
            } else {
                try container.encode(value, forKey: FieldName(name))
            }
        }
    }

    private struct FieldName: CodingKey {
        let stringValue: String
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }
}

extension RunConfiguration {
    var reportSettings: RunReport.Settings {
        RunReport.Settings(consumers: consumers, ttlMs: ttl.seconds * 1000, workMs: work.seconds * 1000,
                           lockTtlMs: lockTTL.seconds * 1000, rate: rate, batch: effectiveBatch,
                           concurrency: concurrency, maxOutstanding: effectiveMaxOutstanding, sweeper: sweeper,
                           graceMs: grace.seconds * 1000, failRate: failRate, maxDeliveries: maxDeliveries, chaos: chaos,
                           backgroundKeys: backgroundKeys, rescueAfterMs: rescueAfter.seconds * 1000, probeWindowMs: probeWindow.seconds * 1000,
                           waitReplicas: waitReplicas, chaosFailover: chaosFailover)
    }
}


/// An optional figure that the JSON report writes as `null` when it is unknown, instead of leaving it out: a reader
/// then sees the field and, in the report's `unknown`, why it has no value.
@propertyWrapper
package struct NullWhenUnknown<Value: Encodable & Sendable>: Encodable, Sendable {
    package var wrappedValue: Value?

    package init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}
