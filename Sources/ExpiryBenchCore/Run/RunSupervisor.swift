import ServiceLifecycle
import ExpiryPipeline
import RedisClient

/// Runs a driver's assembled pipeline as one `ServiceGroup`, until the watch decides the run ends, then stops it
/// in order. The order of the services is the order of the stop, read backwards: chaos and the heartbeat stop
/// first, then generation, then the run's state is written for consumer processes (complete or stopped), then
/// the sweepers, the bridge, the consumers (each settles its batch in hand), the leases, and last the trimmers,
/// the footprint sampler and the reporter, so that the report's series covers the whole stop.
struct RunSupervisor {
    let configuration: RunConfiguration
    let stop: StopSignal
    let say: @Sendable (String) -> Void
    let parts: PipelineParts
    /// A connection for the run-level keys (meta, leases), and the node chaos disconnects the subscriber on.
    let control: RedisConnection
    let chaosNode: RedisConnection
    /// The run's failovers as they are heard (nil when the run can hear of none), and `--chaos failover`.
    var failovers: FailoverWatch?
    var failoverChaos: FailoverChaos?
    let failure = FirstFailure()
    let start = ContinuousClock.now

    func run() async -> RunEnding {
        parts.context.stages?.begin(serverMilliseconds: parts.context.serverNowMilliseconds)
        let watch = EndingWatch("watch") { await self.watch() }
        return await ServiceGroup.run(services(), until: watch) ?? RunEnding(end: .now, interrupted: true)
    }

    private func services() -> [any Service] {
        let (parts, failure, start) = (parts, failure, start)
        let (reporter, footprint, bridge, leases) = (parts.reporter, parts.footprint, parts.bridge, parts.leases)
        let pool = ConsumerPool(parts.consumers, failure: failure) { [connections = parts.connections, context = parts.context] stats in
            try await connections.consumer(stats, context: context)
        }
        var services: [any Service] = [
            RunService.cancelled("reporter", failure: failure) { await reporter.run(start: start) },
            RunService.cancelled("footprint", failure: failure) { await footprint.run() },
        ]
        services += parts.trimmers.enumerated().map { number, trimmer in RunService.cancelled("trimmer \(number)", failure: failure) { await trimmer.run() } }
        services.append(RunService.polling("leases", failure: failure) { await leases.run(shouldStop: $0) })
        services.append(pool)
        services.append(RunService.stopping("bridge", failure: failure, run: { try await bridge.run() }, stop: { bridge.stop() }))
        services.append(RunService.together("sweepers", Self.named("sweeper", parts.sweepers).map { name, sweeper in
            (name, { try await sweeper.run(shouldStop: $0) })
        }, failure: failure))
        services.append(RunService.atStop("end marker", failure: failure) { await self.markEnd() })
        services.append(RunService.together("generators", Self.named("generator", parts.generators).map { name, generator in
            (name, { try await generator.run(shouldStop: $0) })
        }, failure: failure))
        let heartbeat = DriverHeartbeat(keyspace: parts.layout.run, keep: configuration.keep, control: control, context: parts.context)
        services.append(RunService.polling("heartbeat", failure: failure) { await heartbeat.run(shouldStop: $0) })
        if configuration.chaos {
            let chaos = ChaosMonkey(parts: parts, pool: pool, node: chaosNode)
            services.append(RunService.polling("chaos", failure: failure) { await chaos.run(start: start, shouldStop: $0) })
        }
        if let failovers {
            services.insert(RunService.polling("failovers", failure: failure) { await failovers.run(shouldStop: $0) }, at: 0)
        }
        if let failoverChaos {
            services.append(RunService.polling("chaos failover", failure: failure) { await failoverChaos.run(start: start, shouldStop: $0) })
        }
        return services
    }

    /// `sweeper`, or `sweeper 0`, `sweeper 1`... when there are several.
    private static func named<T>(_ name: String, _ items: [T]) -> [(String, T)] {
        items.enumerated().map { (items.count == 1 ? name : "\(name) \($0.offset)", $0.element) }
    }

    /// Checks every 5 ms whether the run ends: complete, interrupted, a component failed, over `--max-duration`,
    /// a threshold failed (`--abort-on-fail`), or stalled.
    private func watch() async -> RunEnding {
        let clock = ContinuousClock()
        var stall = StallWatch(ttl: configuration.ttl, timeout: configuration.stallTimeout, start: start)
        var thresholds = configuration.abortOnFail ? ThresholdWatch(configuration.thresholds, start: start) : nil
        while true {
            try? await Task.sleep(for: .milliseconds(5))
            if let ending = ending(at: clock.now, stall: &stall, thresholds: &thresholds) {
                // The stop must not wait for round trips still waiting for replicas (`--wait-replicas`).
                failure.close()
                parts.connections.acknowledgement?.abandoned.set()
                return ending
            }
        }
    }

    /// Why the run ends now, checked in this order: complete, interrupted, a component failed, over time, a
    /// threshold failed (`--abort-on-fail`), stalled; nil while it goes on.
    private func ending(at now: ContinuousClock.Instant, stall: inout StallWatch, thresholds: inout ThresholdWatch?) -> RunEnding? {
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

    /// Once generation stopped: waits for the probes if every key is processed, then writes the run's state
    /// (complete or stopped), which consumer processes leave on. After a component failed (Redis may be gone for
    /// longer than --timeout already), one attempt: consumer processes also leave when the heartbeat stops.
    private func markEnd() async {
        let complete = parts.counters.finished >= configuration.keys
        if complete { await waitForProbes() }
        let state: RunMeta.State = complete ? .complete : .stopped
        let markEnd = RedisCommand("HSET", parts.layout.run.meta, "state", state.rawValue)
        if failure.message == nil {
            _ = try? await withRetries(giveUpAfter: configuration.timeout) { try await control.send(markEnd) }
        } else {
            _ = try? await control.send(markEnd)
        }
    }

    /// Every key is processed: waits, at most the probe window, for the probes' events still to come, so that
    /// Redis's own expiry lag covers the whole run. The run's figures were taken before the wait.
    private func waitForProbes() async {
        let context = parts.context
        let probes = context.probes
        if probes.settled(serverNow: context.serverNowMilliseconds) { return }
        let clock = ContinuousClock()
        let start = clock.now
        var told = false
        while !probes.settled(serverNow: context.serverNowMilliseconds), !stop.isRequested {
            if !told, clock.now - start > .seconds(1) {
                told = true
                say("All keys are processed; waiting up to \(DurationText.format(probes.window)) (--probe-window) for the expired events of \(Format.count(probes.count - probes.heardAtAll)) probe keys, to measure Redis's own expiry lag ...")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
