import Foundation
import ServiceLifecycle
import Synchronization
import ExpiryPipeline
import RedisClient

/// What a consumer process did in a run it joined.
package struct JoinOutcome: Sendable {
    package let runID: String
    /// How the run ended, as the driver wrote it; nil if the run was removed before this process saw its end.
    package let state: RunMeta.State?
    package let interrupted: Bool
    /// This process's consumers and their first commits.
    package let consumers: [RunReport.Consumer]
    /// Whether the driver's report includes this process's latencies and counters.
    package let reported: Bool
    package let durationSec: Double
    /// Why this process left a run that was still going: its driver stopped beating, or one of its consumers
    /// failed; nil when the run ended (or was removed) or the process was interrupted.
    package var leftBecause: String? = nil
}

/// `--role consumer`: waits for the run `--run-id` to start, joins its consumer group with `--consumers`
/// consumers (spread over the run's shards), follows the run's settings (work, lock TTL, batch...) from its meta
/// hash, and leaves when the driver marks the run complete or stopped, leaving its figures for the driver's
/// report. Its consumers, leases and trimmers are the same services as a driver's, in a group of their own.
struct ConsumerProcess: Sendable {
    let configuration: RunConfiguration
    let stop: StopSignal
    let say: @Sendable (String) -> Void

    func join() async throws -> JoinOutcome {
        try ResourceLimits.ensureOpenFiles(configuration.consumers * 2 + 64, consumers: configuration.consumers)
        // A consumer joins a shared server: it never starts a private one.
        guard case .url(let endpoint, _) = configuration.server else {
            throw RunError(.usage, "--role consumer joins a run on a server the driver uses: give its --redis URL (spawn starts a private server nobody else can reach)")
        }
        guard let runID = configuration.runID else { throw RunError(.usage, "--role consumer needs --run-id") }
        let server = try await ServerHandle.open(.url(endpoint, spawnIfAbsent: false), timeout: configuration.timeout, say: say)
        defer { server.control.close() }
        do {
            let facts = try await Preflight.facts(server.control, endpoint: endpoint)
            let servers = try await RunServers.discover(endpoint: endpoint, control: server.control, clusterEnabled: facts.clusterEnabled)
            let keyspace = RunKeyspace(namespace: configuration.namespace, runID: runID, cluster: servers.cluster != nil)
            let control = servers.cluster == nil ? server.control
                : try await RedisConnection.connect(to: endpoint, name: "expiry-bench:\(runID):join", timeout: configuration.timeout, route: servers.route(for: keyspace.meta))
            defer { if servers.cluster != nil { control.close() } }
            return try await join(keyspace, servers: servers, control: control)
        } catch let error as RedisError {
            throw RunError(error, endpoint: server.endpoint)
        }
    }

    /// How the process left the run.
    private struct Leaving: Sendable {
        /// The run's state as the driver wrote it; nil if the run was removed, or the process left before its end.
        var state: RunMeta.State?
        var interrupted = false
        var driverSilent = false
        /// The run's meta hash is gone: its driver removed the run (its consumers' scripts then write nothing).
        var removed = false
    }

    private func join(_ keyspace: RunKeyspace, servers: RunServers, control: RedisConnection) async throws -> JoinOutcome {
        let meta = try await waitForStart(keyspace, control: control, endpoint: servers.endpoint)
        let settings = try RunMeta.joiningSettings(configuration, meta: meta)
        let layout = RunLayout(run: keyspace, storedTags: meta["shards"] ?? "")
        let process = "p" + String(Int.random(in: 0..<1_679_616), radix: 36).leftPadded(to: 4)
        var joining = PipelineContext(keyspace: keyspace, layout: layout, scripts: try await RunScripts.load(on: control), settings: settings,
                                      counters: RunCounters(), latencies: LatencyRecorder(), serverOffsetMilliseconds: try await ServerClock.offsetMilliseconds(control))
        joining.consumerOffset = try await register(process, consumers: settings.consumers, meta: meta, keyspace: keyspace, control: control)
        let context = joining
        say("expiry-bench: joined run \(keyspace.runID) on \(servers.endpoint.description) as process \(process): \(settings.consumers) consumers over \(layout.shards.count) shard\(layout.shards.count == 1 ? "" : "s"); work \(DurationText.format(settings.consumer.work)), lock \(DurationText.format(settings.consumer.lockTTL)), batch \(settings.consumer.batch) (the run's settings).")

        let connections = ConnectionSet(servers: servers, runID: keyspace.runID, timeout: configuration.timeout,
                                        acknowledgement: settings.consumer.replicaAcknowledgement(timeout: configuration.timeout))
        defer { connections.closeAll() }
        let roster = ConsumerRoster()
        let failure = FirstFailure()
        let services = try await services(process: process, context: context, connections: connections, roster: roster, failure: failure)
        let start = ContinuousClock.now
        let leaving = await ServiceGroup.run(services, until: EndingWatch("run watch") { await self.watchRun(control: control, context: context, failure: failure) })
            ?? Leaving(interrupted: true)
        return await leave(leaving, process: process, context: context, roster: roster, failure: failure, reconnects: connections.reconnects,
                           duration: ContinuousClock.now - start, control: control)
    }

    /// Waits for the driver to start the run; returns the run's meta hash.
    private func waitForStart(_ keyspace: RunKeyspace, control: RedisConnection, endpoint: RedisEndpoint) async throws -> [String: String] {
        let runID = keyspace.runID
        let waitUntil = ContinuousClock.now + configuration.joinTimeout
        var meta = try await RunMeta.read(keyspace, on: control)
        if meta["state"] == nil { say("Waiting for run \(runID) under \(keyspace.namespace) on \(endpoint.description) (up to \(DurationText.format(configuration.joinTimeout)))...") }
        while meta["state"] == nil {
            if stop.isRequested { throw RunError(.interrupted, "interrupted while waiting for run \(runID) to start") }
            if ContinuousClock.now > waitUntil {
                throw RunError(.unavailable, "no run '\(runID)' under namespace '\(keyspace.namespace)' at \(endpoint.description) after \(DurationText.format(configuration.joinTimeout)): start the driver (--role driver --run-id \(runID)) or check --run-id, --namespace and --redis.")
            }
            try? await Task.sleep(for: .milliseconds(200))
            meta = try await RunMeta.read(keyspace, on: control)
        }
        guard meta["state"] == RunMeta.State.running.rawValue else {
            throw RunError(.usage, "run \(runID) has already ended (state \(meta["state"] ?? "?")): a consumer process can only join a running run.")
        }
        return meta
    }

    /// Enters the process in the run's meta hash; returns how many consumers the run had before this process's
    /// (the driver's, and those of processes that joined earlier): this process's continue the round robin over
    /// the shards where they stop.
    private func register(_ process: String, consumers: Int, meta: [String: String], keyspace: RunKeyspace, control: RedisConnection) async throws -> Int {
        guard try await RunMeta.set("member:\(process)", String(consumers), keyspace: keyspace, on: control) else {
            throw RunError(.usage, "run \(keyspace.runID) ended before this process could join.")
        }
        let joinedSoFar = try await RunMeta.add("joined_consumers", consumers, keyspace: keyspace, on: control)
        return (Int(meta["consumers"] ?? "") ?? 0) + joinedSoFar - consumers
    }

    /// This process's consumers, leases and trimmers (which here only read the shards' gauges for these
    /// consumers: trimming twice is harmless), in the order the group stops them backwards.
    private func services(process: String, context: PipelineContext, connections: ConnectionSet, roster: ConsumerRoster,
                          failure: FirstFailure) async throws -> [any Service] {
        let layout = context.layout
        var consumers: [StreamConsumer] = []
        for index in 0..<context.settings.consumers {
            let stats = ConsumerStats(name: "\(process).consumer-\(index)", shard: layout.shard(forConsumer: index, after: context.consumerOffset))
            roster.add(stats)
            consumers.append(try await connections.consumer(stats, context: context))
        }
        let leases = LeaseKeeper(connection: try await connections.open("\(process).leases", for: context.keyspace.leases), context: context, roster: roster)
        try await leases.renew()
        var services: [any Service] = []
        for shard in layout.shards {
            let trimmer = StreamTrimmer(connection: try await connections.open("\(process).gauge-\(shard.shardIndex)", for: shard.stream), keyspace: shard,
                                        gauges: context.gauges, reclaimIdle: context.settings.consumer.reclaimIdle)
            services.append(RunService.cancelled("trimmer \(shard.shardIndex)", failure: failure) { await trimmer.run() })
        }
        services.append(RunService.polling("leases", failure: failure) { await leases.run(shouldStop: $0) })
        services.append(ConsumerPool(consumers, failure: failure) { _ in throw RunError(.usage, "a consumer process starts no replacement consumers") })
        return services
    }

    /// Reads the run's state every 200 ms until the driver ends it or removes it, the driver stops beating (a
    /// driver killed outright never says the run ended), a consumer fails or the process is interrupted. Once the
    /// run is removed its consumers stop anyway: their scripts find the run's keys gone and write nothing.
    private func watchRun(control: RedisConnection, context: PipelineContext, failure: FirstFailure) async -> Leaving {
        while true {
            try? await Task.sleep(for: .milliseconds(200))
            if stop.isRequested { return Leaving(interrupted: true) }
            // A consumer that failed because the run was removed is the run's end, not a failure: the meta hash says.
            guard let fields = try? await RunMeta.read(context.keyspace, on: control) else {
                if failure.message != nil { return Leaving() }
                continue
            }
            if fields.isEmpty { return Leaving(removed: true) }
            if failure.message != nil { return Leaving() }
            guard let current = fields["state"].flatMap(RunMeta.State.init) else { return Leaving() }
            if current != .running { return Leaving(state: current) }
            if let beat = fields["driver_ms"].flatMap(Int64.init), context.serverNowMilliseconds - beat > RunMeta.driverSilence.milliseconds {
                return Leaving(driverSilent: true)
            }
        }
    }

    /// Leaves the process's figures in the run's meta hash for the driver's report, and says why it left.
    private func leave(_ leaving: Leaving, process: String, context: PipelineContext, roster: ConsumerRoster, failure: FirstFailure, reconnects: Int,
                       duration: Duration, control: RedisConnection) async -> JoinOutcome {
        let runID = context.keyspace.runID
        // A consumer refused because the run's keys are gone (its driver removed the run as this process finished
        // its batches) did not fail on its own: the one line the command prints says how the run ended.
        if let message = failure.message, !failure.runGone {
            Diagnostics.warn("a consumer of this process failed: \(message)")
        }
        if leaving.driverSilent {
            Diagnostics.warn("the driver of run \(runID) has not updated it for \(DurationText.format(RunMeta.driverSilence)): it is gone; leaving the run.")
        }
        let report = ProcessReport(process: process, consumers: context.settings.consumers, counters: context.counters, latencies: context.latencies,
                                   reconnects: reconnects)
        let reported = (try? await RunMeta.set("report:\(process)", report.json, keyspace: context.keyspace, on: control)) ?? false
        let counts = roster.members.map { ($0.name, $0.processed.load(ordering: .relaxed)) }
        let total = counts.reduce(0) { $0 + $1.1 }
        var outcome = JoinOutcome(runID: runID, state: leaving.state, interrupted: leaving.interrupted,
                                  consumers: counts.map { RunReport.Consumer(name: $0.0, processed: $0.1, share: total > 0 ? Double($0.1) / Double(total) : 0) },
                                  reported: reported, durationSec: duration.seconds)
        if leaving.removed {
            outcome.leftBecause = "its driver removed the run (its keys are gone from Redis), so this process stopped"
        } else if leaving.driverSilent {
            outcome.leftBecause = "its driver stopped beating for \(DurationText.format(RunMeta.driverSilence)) (killed, or cut off from Redis)"
        } else if let message = failure.message {
            outcome.leftBecause = "a consumer of this process failed (\(message))"
        }
        return outcome
    }
}
