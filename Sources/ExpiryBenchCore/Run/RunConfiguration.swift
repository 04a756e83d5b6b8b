import ExpiryPipeline
import RedisClient

/// Everything a run needs to know, already validated. Built by the command line, or directly by tests.
package struct RunConfiguration: Sendable {
    /// Where the server comes from.
    package enum Server: Sendable, Equatable {
        /// The given URL; if it is the default address and nothing listens there, a private server is spawned.
        case url(RedisEndpoint, spawnIfAbsent: Bool)
        /// Always spawn a private `redis-server`.
        case spawn

        /// Whether connections go over TLS.
        package var usesTLS: Bool {
            if case .url(let endpoint, _) = self { return endpoint.tls != nil }
            return false
        }
    }

    /// What this process does in the run.
    package enum Role: String, Sendable, CaseIterable {
        /// Everything: the driver's work and consumers.
        case all
        /// Generator, bridge, sweeper, reporter and verification, with `consumers` consumers of its own (0 allowed).
        case driver
        /// Only consumers, joining the run named by `runID`, until the run is over.
        case consumer
    }

    /// How live progress is shown.
    package enum Progress: String, Sendable, CaseIterable {
        case auto, plain, none
    }

    package var server: Server = .url(.localDefault, spawnIfAbsent: true)
    package var keys = 3_000_000
    package var consumers = 64
    package var ttl: Duration = .milliseconds(100)
    package var work: Duration = .milliseconds(5)
    package var lockTTL: Duration = .milliseconds(500)
    /// Keys per second; 0 for as fast as the pipeline takes them.
    package var rate = 0
    /// Stages of the rate (`--rate 1000:30s,5000:30s`); empty for one rate. They set `keys` and `rate` (the highest).
    package var stages: [RateSchedule.Stage] = []
    /// Entries per XREADGROUP; nil to derive it from the lock TTL, the work time and the concurrency.
    package var batch: Int?
    /// Finished keys of a batch are committed this often while the rest of it is still being worked on.
    package var commitEvery: Duration = .milliseconds(50)
    /// A key committed more than this after its deadline counts as late (missed its deadline).
    package var lateAfter: Duration = .seconds(1)
    /// Keys of a batch in their work at once, per consumer.
    package var concurrency = 1
    /// Keys generated but not yet committed, at most; 0 to derive it.
    package var maxOutstanding = 0
    package var namespace = "expiry-bench"
    package var runID: String?
    package var role: Role = .all
    /// Shards of the run; nil for the default (1 on a single server, 3 per primary in a cluster).
    package var shards: Int?
    /// How long a consumer process waits for its run to appear.
    package var joinTimeout: Duration = .seconds(30)
    package var keep = false
    /// How long one call to Redis may take before it counts as failed.
    package var timeout: Duration = .seconds(10)
    /// A run still going after this long ends with a failed verdict (0: no limit).
    package var maxDuration: Duration = .zero
    /// Pass/fail criteria checked at the end (`--threshold`); a verified run that fails one exits 99.
    package var thresholds: [Threshold] = []
    /// Check the latency thresholds while the run goes and stop it on the first that fails (`--abort-on-fail`).
    package var abortOnFail = false
    /// A run whose commits stop advancing for this long ends with a failed verdict.
    package var stallTimeout: Duration = .seconds(30)
    /// Whether the deadline sweeper runs (off reproduces a pipeline that trusts notifications alone).
    package var sweeper = true
    /// How long past its deadline a key may wait for Redis to expire it before the sweeper touches it (so that
    /// Redis expires it then and raises its event).
    package var grace: Duration = .milliseconds(50)
    /// How long after the touch a key whose expired event never came waits before the sweeper publishes it itself.
    package var rescueAfter: Duration = .seconds(1)
    /// How long after its deadline a probe key's expired event may come before the probe counts as missing.
    package var probeWindow: Duration = .seconds(10)
    /// How often the sweeper looks for overdue keys.
    package var sweepInterval: Duration = .milliseconds(10)
    /// Probability that the simulated work of a key fails (it is then redelivered, or dead-lettered).
    package var failRate = 0.0
    /// Deliveries of a key after which a failure sends it to the dead-letter stream.
    package var maxDeliveries = 3
    /// Inject faults while the run goes: consumer crashes and stalls, subscriber disconnections.
    package var chaos = false
    /// `--chaos failover`: ask the sentinels (or a cluster's replica) for one failover at a random moment.
    package var chaosFailover = false
    /// `--wait-replicas N`: every round trip of the pipeline counts as done only once N replicas hold its writes.
    package var waitReplicas = 0
    /// Keys with a long TTL written under the run's namespace before the run, to reproduce a real cache's expiry lag.
    package var backgroundKeys = 0
    /// Go on even if the run may not fit under the server's maxmemory.
    package var force = false
    package var jsonPath: String?
    /// Keep one latency histogram per second, for `--hdr-log`.
    package var hdrIntervals = false
    /// `--metrics-port`: where the run's figures go as Prometheus metrics; nil for none.
    package var metrics: RunMetrics?
    package var progress: Progress = .auto

    package init() {}

    /// Entries a consumer reads at once. With work to do, the batch is sized so that all of it finishes well
    /// inside the lock TTL: `concurrency × ⌊lockTTL / (2 × work)⌋`, at most 256.
    package var effectiveBatch: Int {
        if let batch { return batch }
        return Self.defaultBatch(work: work, lockTTL: lockTTL, concurrency: concurrency)
    }

    package static func defaultBatch(work: Duration, lockTTL: Duration, concurrency: Int) -> Int {
        guard work > .zero else { return 256 }
        let budget = min(lockTTL / 2, lockTTL - lockMargin)
        let perSlot = Int(budget.seconds / work.seconds)
        return max(1, min(256, perSlot * concurrency))
    }

    /// Time a batch's locks must outlast its work by, for the round trips around it on a loaded machine.
    package static let lockMargin: Duration = .milliseconds(50)

    /// The longest a batch holds its locks: its work, done `concurrency` keys at a time.
    package var batchWorkTime: Duration {
        let rounds = (effectiveBatch + concurrency - 1) / concurrency
        return work * rounds
    }

    /// Keys generated but not committed, at most, before the generator waits.
    package var effectiveMaxOutstanding: Int {
        if maxOutstanding > 0 { return maxOutstanding }
        // A driver's consumers run in other processes: it assumes the default pool of 64 at least.
        let pool = role == .driver ? max(consumers, 64) : consumers
        return max(10_000, pool * effectiveBatch * 2 + 10_000)
    }

    /// What the pipeline's components take of this configuration.
    /// The safety TTL of the run's keys (`RunKeyspace.safetyTTL`); nil for a kept run, whose keys stay.
    package var safetyTTL: Duration? { keep ? nil : RunKeyspace.safetyTTL }

    package var pipelineSettings: PipelineSettings {
        var settings = PipelineSettings(
            generator: GeneratorSettings(keys: keys, ttl: ttl, rate: rate, stages: stages, maxOutstanding: effectiveMaxOutstanding),
            consumer: ConsumerSettings(work: work, lockTTL: lockTTL, batch: effectiveBatch, concurrency: concurrency, commitEvery: commitEvery,
                                       failRate: failRate, maxDeliveries: maxDeliveries, waitReplicas: waitReplicas),
            sweeper: SweeperSettings(grace: grace, rescueAfter: rescueAfter, interval: sweepInterval),
            consumers: consumers, probeWindow: probeWindow, timeout: timeout)
        settings.safetyTTL = safetyTTL
        if let metrics { settings.observeLatencies = { metrics.record(microseconds: $0) } }
        return settings
    }

    /// Problems with the values, each naming the flag and the accepted range. Empty when the configuration is usable.
    package func problems() -> [String] {
        var found: [String] = []
        if keys < 1 || keys > 1_000_000_000 { found.append("--keys must be between 1 and 1000000000 (got \(keys))") }
        if role == .driver {
            if consumers < 0 || consumers > 4096 { found.append("--consumers must be between 0 and 4096 (got \(consumers))") }
        } else if consumers < 1 || consumers > 4096 {
            found.append("--consumers must be between 1 and 4096 (got \(consumers))" + (consumers == 0 ? "; 0 is for a driver whose consumers run elsewhere (--role driver)" : ""))
        }
        if role == .consumer, server == .spawn { found.append("--role consumer joins a run on a server the driver uses: give its --redis URL (spawn starts a private server nobody else can reach)") }
        if role == .consumer, runID == nil { found.append("--role consumer needs the --run-id of the run to join (the driver prints it, or give the driver one with --run-id)") }
        if let runID, runID.isEmpty || runID.count > 64 || runID.contains(where: { " *?[]{}@,:\\".contains($0) }) {
            found.append("--run-id must be 1 to 64 characters without spaces, colons, braces, commas, '@' or glob characters (got '\(runID)')")
        }
        if let shards, shards < 1 || shards > 1024 { found.append("--shards must be between 1 and 1024 (got \(shards))") }
        if joinTimeout < .zero { found.append("--join-timeout must be 0 or more (got \(DurationText.format(joinTimeout)))") }
        if ttl < .milliseconds(1) || ttl > .seconds(86_400) { found.append("--ttl must be between 1ms and 24h (got \(DurationText.format(ttl)))") }
        if work < .zero || work > .seconds(60) { found.append("--work must be between 0 and 60s (got \(DurationText.format(work)))") }
        if lockTTL < .milliseconds(10) || lockTTL > .seconds(3600) { found.append("--lock-ttl must be between 10ms and 1h (got \(DurationText.format(lockTTL)))") }
        if rate < 0 || rate > 10_000_000 { found.append("--rate must be between 0 (as fast as possible) and 10000000 keys/s (got \(rate))") }
        if let batch, batch < 1 || batch > 10_000 { found.append("--batch must be between 1 and 10000 (got \(batch))") }
        if concurrency < 1 || concurrency > 1024 { found.append("--concurrency must be between 1 and 1024 (got \(concurrency))") }
        if maxOutstanding < 0 { found.append("--max-outstanding must be 0 (automatic) or more (got \(maxOutstanding))") }
        if commitEvery < .milliseconds(1) || commitEvery > .seconds(60) { found.append("--commit-every must be between 1ms and 60s (got \(DurationText.format(commitEvery)))") }
        if lateAfter < .zero || lateAfter > .seconds(86_400) { found.append("--late-after must be between 0 and 24h (got \(DurationText.format(lateAfter)))") }
        if grace < .zero || grace > .seconds(3600) { found.append("--grace must be between 0 and 1h (got \(DurationText.format(grace)))") }
        if rescueAfter < .milliseconds(10) || rescueAfter > .seconds(3600) { found.append("--rescue-after must be between 10ms and 1h (got \(DurationText.format(rescueAfter)))") }
        if probeWindow < .milliseconds(100) || probeWindow > .seconds(3600) { found.append("--probe-window must be between 100ms and 1h (got \(DurationText.format(probeWindow)))") }
        if !(0...1).contains(failRate) || failRate.isNaN { found.append("--fail-rate must be a probability between 0 and 1 (got \(failRate))") }
        if failRate >= 1 { found.append("--fail-rate 1 fails every key forever: use a value below 1") }
        if maxDeliveries < 1 || maxDeliveries > 1000 { found.append("--max-deliveries must be between 1 and 1000 (got \(maxDeliveries))") }
        if chaosFailover, role == .consumer { found.append("--chaos failover is asked by the driver: give it to the process with --role all or driver") }
        if waitReplicas < 0 || waitReplicas > 100 { found.append("--wait-replicas must be between 0 and 100 (got \(waitReplicas))") }
        if backgroundKeys < 0 || backgroundKeys > 100_000_000 { found.append("--background-keys must be between 0 and 100000000 (got \(backgroundKeys))") }
        if timeout < .milliseconds(100) { found.append("--timeout must be at least 100ms (got \(DurationText.format(timeout)))") }
        if maxDuration < .zero { found.append("--max-duration must be 0 (no limit) or more (got \(DurationText.format(maxDuration)))") }
        if stallTimeout < .seconds(1) { found.append("--stall-timeout must be at least 1s (got \(DurationText.format(stallTimeout)))") }
        if namespace.isEmpty || namespace.count > 64 || namespace.contains(where: { $0 == " " || $0 == "*" || $0 == "?" || $0 == "[" || $0 == "{" || $0 == "}" }) {
            found.append("--namespace must be 1 to 64 characters without spaces, braces or glob characters (got '\(namespace)')")
        }
        if found.isEmpty, work > .zero, batchWorkTime * 2 > lockTTL || batchWorkTime + Self.lockMargin > lockTTL {
            let needed = max(batchWorkTime * 2, batchWorkTime + Self.lockMargin)
            found.append("--batch \(effectiveBatch) with --work \(DurationText.format(work)) and --concurrency \(concurrency) holds its locks for \(DurationText.format(batchWorkTime)) of work, which needs --lock-ttl \(DurationText.format(needed)) or more (twice the work, and 50ms above it); --lock-ttl is \(DurationText.format(lockTTL)): raise it" + (effectiveBatch > concurrency ? " or lower --batch" : ""))
        }
        return found
    }
}

extension ConsumerSettings {
    /// What `--wait-replicas` asks of the pipeline's connections; nil for nothing. One WAIT blocks at most a
    /// quarter of `--timeout` (1 s at most); the connection asks again for up to `--timeout` before the step is
    /// tried again on a new connection, and for up to 6 × `--timeout` (60 s at least) while a replica is on its way
    /// (a failover: the sentinels turning the old primary into the new one's replica).
    package func replicaAcknowledgement(timeout: Duration) -> ReplicaAcknowledgement? {
        waitReplicas > 0 ? ReplicaAcknowledgement(replicas: waitReplicas, timeout: min(.seconds(1), timeout / 4), patience: max(.seconds(60), timeout * 6)) : nil
    }
}

