import Foundation
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

extension BenchmarkRun {
    /// `--role consumer`: waits for the run `--run-id` to start, joins its consumer group with `--consumers`
    /// consumers (spread over the run's shards), follows the run's settings (work, lock TTL, batch...) from its
    /// meta hash, and leaves when the driver marks the run complete or stopped, leaving its figures for the
    /// driver's report.
    package func join() async throws -> JoinOutcome {
        try ResourceLimits.ensureOpenFiles(configuration.consumers * 2 + 64, consumers: configuration.consumers)
        // A consumer joins a shared server: it never starts a private one.
        guard case .url(let endpoint, _) = configuration.server else {
            throw RunError(.usage, "--role consumer joins a run on a server the driver uses: give its --redis URL (spawn starts a private server nobody else can reach)")
        }
        let server = try await ServerHandle.open(.url(endpoint, spawnIfAbsent: false), timeout: configuration.timeout, say: say)
        defer { server.control.close() }
        do {
            return try await join(on: server)
        } catch let error as RedisError {
            throw RunError(error, endpoint: server.endpoint)
        }
    }

    private func join(on server: ServerHandle) async throws -> JoinOutcome {
        let endpoint = server.endpoint
        let facts = try await Preflight.facts(server.control, endpoint: endpoint)
        let servers = try await RunServers.discover(endpoint: endpoint, control: server.control, clusterEnabled: facts.clusterEnabled)
        guard let runID = configuration.runID else { throw RunError(.usage, "--role consumer needs --run-id") }
        let keyspace = RunKeyspace(namespace: configuration.namespace, runID: runID, cluster: servers.cluster != nil)
        let control = servers.cluster == nil ? server.control
            : try await RedisConnection.connect(to: endpoint, name: "expiry-bench:\(runID):join", timeout: configuration.timeout, route: servers.route(for: keyspace.meta))
        defer { if servers.cluster != nil { control.close() } }

        // Wait for the driver to start the run.
        let clock = ContinuousClock()
        let waitUntil = clock.now + configuration.joinTimeout
        var meta = try await RunMeta.read(keyspace, on: control)
        if meta["state"] == nil { say("Waiting for run \(runID) under \(keyspace.namespace) on \(endpoint.description) (up to \(DurationText.format(configuration.joinTimeout)))...") }
        while meta["state"] == nil {
            if stop.isRequested { throw RunError(.interrupted, "interrupted while waiting for run \(runID) to start") }
            if clock.now > waitUntil {
                throw RunError(.unavailable, "no run '\(runID)' under namespace '\(keyspace.namespace)' at \(endpoint.description) after \(DurationText.format(configuration.joinTimeout)): start the driver (--role driver --run-id \(runID)) or check --run-id, --namespace and --redis.")
            }
            try? await Task.sleep(for: .milliseconds(200))
            meta = try await RunMeta.read(keyspace, on: control)
        }
        guard meta["state"] == RunMeta.State.running.rawValue else {
            throw RunError(.usage, "run \(runID) has already ended (state \(meta["state"] ?? "?")): a consumer process can only join a running run.")
        }
        let joined = try RunMeta.joiningConfiguration(configuration, meta: meta)
        let layout = RunLayout(run: keyspace, storedTags: meta["shards"] ?? "")
        let process = "p" + String(Int.random(in: 0..<1_679_616), radix: 36).leftPadded(to: 4)
        let scripts = try await RunScripts.load(on: control)
        var context = PipelineContext(keyspace: keyspace, layout: layout, scripts: scripts, settings: joined.pipelineSettings, counters: RunCounters(),
                                      latencies: LatencyRecorder(), serverOffsetMilliseconds: try await ServerClock.offsetMilliseconds(control))
        guard try await RunMeta.set("member:\(process)", String(joined.consumers), keyspace: keyspace, on: control) else {
            throw RunError(.usage, "run \(runID) ended before this process could join.")
        }
        // Consumers already in the run (the driver's, and those of processes that joined earlier): this process's
        // continue the round robin over the shards where they stop.
        let joinedSoFar = try await RunMeta.add("joined_consumers", joined.consumers, keyspace: keyspace, on: control)
        let before = (Int(meta["consumers"] ?? "") ?? 0) + joinedSoFar - joined.consumers
        context.consumerOffset = before
        say("expiry-bench: joined run \(runID) on \(endpoint.description) as process \(process): \(joined.consumers) consumers over \(layout.shards.count) shard\(layout.shards.count == 1 ? "" : "s"); work \(DurationText.format(joined.work)), lock \(DurationText.format(joined.lockTTL)), batch \(joined.effectiveBatch) (the run's settings).")

        let connections = ConnectionSet(servers: servers, runID: runID, timeout: configuration.timeout)
        defer { connections.closeAll() }
        let roster = ConsumerRoster()
        var consumers: [StreamConsumer] = []
        for index in 0..<joined.consumers {
            let stats = ConsumerStats(name: "\(process).consumer-\(index)", shard: layout.shard(forConsumer: index, after: before))
            roster.add(stats)
            consumers.append(try await connections.consumer(stats, context: context))
        }
        let leases = LeaseKeeper(connection: try await connections.open("\(process).leases", for: keyspace.leases), context: context, roster: roster)
        try await leases.renew()
        // Trimmers here only read the shards' gauges for these consumers (trimming twice is harmless).
        var trimmers: [StreamTrimmer] = []
        for shard in layout.shards {
            trimmers.append(StreamTrimmer(connection: try await connections.open("\(process).gauge-\(shard.shardIndex)", for: shard.stream), keyspace: shard,
                                          gauges: context.gauges, reclaimIdle: context.settings.reclaimIdle))
        }

        let stopConsuming = RunFlag()
        let failure = FirstFailure()
        let start = clock.now
        var state: RunMeta.State?
        var interrupted = false
        var driverSilent = false
        await withTaskGroup(of: Void.self) { group in
            for consumer in consumers {
                group.addTask {
                    do { try await consumer.runUntilStoppedOrCrashed(shouldStop: { stopConsuming.isSet }) } catch {
                        failure.record("\(consumer.stats.name): \(error)")
                    }
                }
            }
            group.addTask { await leases.run(shouldStop: { stopConsuming.isSet }) }
            let watching = trimmers.map { trimmer in Task { await trimmer.run() } }
            while true {
                try? await Task.sleep(for: .milliseconds(200))
                if stop.isRequested { interrupted = true; break }
                if failure.message != nil { break }
                guard let fields = try? await RunMeta.read(keyspace, on: control) else { continue }
                guard let current = fields["state"].flatMap(RunMeta.State.init) else { break }  // the driver removed the run
                if current != .running { state = current; break }
                // A driver killed outright never says the run ended: its heartbeat stops.
                if let beat = fields["driver_ms"].flatMap(Int64.init), context.serverNowMilliseconds - beat > RunMeta.driverSilence.milliseconds {
                    driverSilent = true
                    break
                }
            }
            stopConsuming.set()
            await group.waitForAll()
            for task in watching { task.cancel() }
            for task in watching { _ = await task.value }
        }
        if let message = failure.message {
            Diagnostics.warn("a consumer of this process failed: \(message)")
        }
        if driverSilent {
            Diagnostics.warn("the driver of run \(runID) has not updated it for \(DurationText.format(RunMeta.driverSilence)): it is gone; leaving the run.")
        }
        let report = ProcessReport(process: process, consumers: joined.consumers, counters: context.counters, latencies: context.latencies,
                                   reconnects: connections.reconnects)
        let reported = (try? await RunMeta.set("report:\(process)", report.json, keyspace: keyspace, on: control)) ?? false
        let counts = roster.members.map { ($0.name, $0.processed.load(ordering: .relaxed)) }
        let total = counts.reduce(0) { $0 + $1.1 }
        var outcome = JoinOutcome(runID: runID, state: state, interrupted: interrupted,
                                  consumers: counts.map { RunReport.Consumer(name: $0.0, processed: $0.1, share: total > 0 ? Double($0.1) / Double(total) : 0) },
                                  reported: reported, durationSec: (clock.now - start).seconds)
        if driverSilent {
            outcome.leftBecause = "its driver stopped beating for \(DurationText.format(RunMeta.driverSilence)) (killed, or cut off from Redis)"
        } else if let message = failure.message {
            outcome.leftBecause = "a consumer of this process failed (\(message))"
        }
        return outcome
    }
}
