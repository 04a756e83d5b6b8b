import ExpiryPipeline
import RedisClient

/// How the watch ended a run: complete, or why not.
struct RunEnding {
    var end: ContinuousClock.Instant
    var interrupted = false
    var stalledFor: Duration?
    var overTime = false
    var abort: ThresholdWatch.Abort?
}

/// A run stalls when neither its finished nor its generated keys move for longer than `timeout`; keys still
/// inside their TTL are not a stall, so it waits `ttl` for them first.
struct StallWatch {
    let ttl: Duration
    let timeout: Duration
    private var lastProgress: ContinuousClock.Instant
    private var lastFinished = 0
    private var lastGenerated = 0

    init(ttl: Duration, timeout: Duration, start: ContinuousClock.Instant) {
        self.ttl = ttl
        self.timeout = timeout
        self.lastProgress = start
    }

    /// How long the run has made no progress, once that is a stall; nil while it is not.
    mutating func stalledFor(at now: ContinuousClock.Instant, finished: Int, generated: Int) -> Duration? {
        if finished != lastFinished || generated != lastGenerated {
            lastProgress = now
            lastFinished = finished
            lastGenerated = generated
        }
        return now - (lastProgress + ttl) > timeout ? now - lastProgress : nil
    }
}

/// The driver's heartbeat for consumer processes, once a second, which also renews the run-level keys' safety
/// TTL (the shards' keys get theirs from `StreamTrimmer`).
struct DriverHeartbeat {
    let keyspace: RunKeyspace
    let keep: Bool
    let control: RedisConnection
    private var last: ContinuousClock.Instant

    init(keyspace: RunKeyspace, keep: Bool, control: RedisConnection, start: ContinuousClock.Instant) {
        self.keyspace = keyspace
        self.keep = keep
        self.control = control
        self.last = start
    }

    mutating func beat(at now: ContinuousClock.Instant, serverNowMilliseconds: Int64) async {
        guard now - last > .seconds(1) else { return }
        last = now
        var commands = [RedisCommand("HSET", keyspace.meta, "driver_ms", String(serverNowMilliseconds))]
        if !keep { commands += keyspace.runBookkeepingKeys.map { RedisCommand("PEXPIRE", $0, "3600000") } }
        _ = try? await control.pipeline(commands)
    }
}

extension BenchmarkRun {
    /// Adds a component to the run's task group; its error, if any, becomes the run's first failure.
    static func addChild(_ name: String, to group: inout TaskGroup<Void>, failure: FirstFailure, _ body: @escaping @Sendable () async throws -> Void) {
        group.addTask {
            do { try await body() } catch { failure.record("\(name): \(error)") }
        }
    }

    /// Watches the run every 5 ms until it is complete, interrupted, failed, over `--max-duration`, stopped by a
    /// threshold or stalled; meanwhile beats for consumer processes and, under `--chaos`, injects faults
    /// (replacement consumers join `group`).
    func watch(_ parts: PipelineParts, start: ContinuousClock.Instant, control: RedisConnection, chaosNode: RedisConnection,
               failure: FirstFailure, stopConsuming: RunFlag, group: inout TaskGroup<Void>) async -> RunEnding {
        let clock = ContinuousClock()
        var stall = StallWatch(ttl: configuration.ttl, timeout: configuration.stallTimeout, start: start)
        var heartbeat = DriverHeartbeat(keyspace: parts.layout.run, keep: configuration.keep, control: control, start: start)
        var thresholds = configuration.abortOnFail ? ThresholdWatch(configuration.thresholds, start: start) : nil
        var chaos = configuration.chaos ? ChaosMonkey(start: start) : nil
        while true {
            try? await Task.sleep(for: .milliseconds(5))
            let now = clock.now
            if let ending = ending(at: now, start: start, parts: parts, failure: failure, stall: &stall, thresholds: &thresholds) { return ending }
            await heartbeat.beat(at: now, serverNowMilliseconds: parts.context.serverNowMilliseconds)
            if var monkey = chaos, let fault = monkey.due(at: now) {
                await inject(fault, chaos: &monkey, parts: parts, at: now, node: chaosNode, failure: failure, stopConsuming: stopConsuming, group: &group)
                chaos = monkey
            }
        }
    }

    /// Why the run ends now, checked in this order: complete, interrupted, a component failed, over time, a
    /// threshold failed (`--abort-on-fail`), stalled; nil while it goes on.
    private func ending(at now: ContinuousClock.Instant, start: ContinuousClock.Instant, parts: PipelineParts, failure: FirstFailure,
                        stall: inout StallWatch, thresholds: inout ThresholdWatch?) -> RunEnding? {
        let counters = parts.counters
        let finished = counters.finished
        var ending = RunEnding(end: now)
        if finished >= configuration.keys { return ending }
        if stop.isRequested { ending.interrupted = true; return ending }
        if failure.message != nil { return ending }
        if configuration.maxDuration > .zero, now - start > configuration.maxDuration { ending.overTime = true; return ending }
        if let failed = thresholds?.failure(at: now, latencies: parts.context.latencies) {
            ending.abort = failed
            ending.interrupted = true
            return ending
        }
        if let stalled = stall.stalledFor(at: now, finished: finished, generated: counters[\.generated]) {
            ending.stalledFor = stalled
            return ending
        }
        return nil
    }

    /// One `--chaos` fault: a consumer crashes (a replacement joins under a new name), a consumer stalls past its
    /// lock TTL, or the subscriber's connection is killed.
    private func inject(_ fault: ChaosMonkey.Fault, chaos: inout ChaosMonkey, parts: PipelineParts, at now: ContinuousClock.Instant, node: RedisConnection,
                        failure: FirstFailure, stopConsuming: RunFlag, group: inout TaskGroup<Void>) async {
        log.info("chaos: \(fault)")
        let (roster, context, counters) = (parts.roster, parts.context, parts.counters)
        switch fault {
        case .crash:
            guard let victim = roster.alive.filter({ !$0.crash.isSet }).randomElement() else { return }
            victim.crash.set()
            victim.alive.set(false)
            context.recoveries.crashed(victim.name, at: now)
            counters.add(\.chaosCrashes, 1)
            let replacement = ConsumerStats(name: ChaosMonkey.replacementName(for: victim.name), shard: victim.shard)
            roster.add(replacement)
            let connections = parts.connections
            Self.addChild(replacement.name, to: &group, failure: failure) {
                let consumer = try await connections.consumer(replacement, context: context)
                try await consumer.runUntilStoppedOrCrashed(shouldStop: { stopConsuming.isSet })
            }
        case .stall:
            roster.alive.filter { !$0.crash.isSet }.randomElement()?.stall.set()
        case .killSubscriber:
            do {
                if try await ChaosMonkey.killClient(named: ExpirationBridge.subscriberName(parts.layout.run), using: node) {
                    counters.add(\.chaosSubscriberKills, 1)
                }
            } catch let error as RedisError where error.serverSays("NOPERM") {
                if !chaos.warnedPermission {
                    chaos.warnedPermission = true
                    Diagnostics.warn("--chaos cannot disconnect the subscriber: this user may not run CLIENT LIST and CLIENT KILL (\(error.serverMessage ?? "")); grant +client|list +client|kill to have it. Crashes and stalls go on.")
                }
            } catch {}
        }
    }
}
