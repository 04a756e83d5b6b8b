import Histogram
import Synchronization
import ExpiryPipeline
import RedisClient

extension BenchmarkRun {
    /// Sets up the run's keys and components, runs them as children of one task group until the run is complete,
    /// interrupted, failed or stalled, then verifies in Redis and builds the report.
    /// - Parameters:
    ///   - control: a connection for the run-level keys (meta, leases).
    ///   - nodes: one connection per primary (the server itself when not a cluster).
    func runPipeline(servers: RunServers, control: RedisConnection, nodes: [RedisConnection], keyspace: RunKeyspace, version: String, identity: ServerIdentity, embedded: Bool) async throws -> RunOutcome {
        let connections = ConnectionSet(servers: servers, runID: keyspace.runID, timeout: configuration.timeout)
        defer { connections.closeAll() }
        let parts = try await assemble(servers: servers, control: control, keyspace: keyspace, connections: connections)
        defer { parts.bridge.stop() }
        let failure = FirstFailure()
        let start = ContinuousClock.now
        let startedAt = Double(WallClock.milliseconds()) / 1000
        let ending = await run(parts, start: start, control: control, chaosNode: nodes[0], failure: failure)
        parts.reporter.finishLine()

        let processes = await collectProcessReports(keyspace: keyspace, control: control, context: parts.context)
        var verification = await verify(shards: parts.layout.shards, connections: parts.shardControls, counters: parts.counters, reportedCommits: processes.committed,
                                        patience: failure.message == nil ? configuration.timeout : .seconds(1))
        verification.interrupted = ending.interrupted
        verification.stalledFor = ending.stalledFor
        verification.componentFailure = failure.message
        verification.exceededMaxDuration = ending.overTime ? configuration.maxDuration : nil
        verification.abortedBy = ending.abort?.description
        if ending.stalledFor != nil, configuration.consumers == 0, processes.joined == 0 {
            verification.componentFailure = "no consumer took part: this driver has --consumers 0 and no process joined with --role consumer --run-id \(keyspace.runID)"
        }
        let histogram = parts.context.latencies.snapshot()
        let redis = embedded ? "private redis-server \(servers.endpoint.addressDescription)" : servers.cluster != nil ? "Redis Cluster \(servers.endpoint.description)" : servers.endpoint.description
        var report = await makeReport(parts, verification: verification, duration: max((ending.end - start).seconds, 1e-6), histogram: histogram,
                                      server: (redis, version, identity), processes: processes)
        report.shards = zip(parts.layout.shards, verification.processedPerShard).map { shard, processed in
            RunReport.Shard(name: shard.shardTag ?? "-", node: servers.node(of: shard), keysProcessed: processed)
        }
        report.thresholds = RunReport.thresholdResults(configuration.thresholds, report: report, abort: ending.abort)
        return RunOutcome(report: report, samples: parts.reporter.samples, latencies: histogram, startedAt: startedAt, hdrIntervals: parts.reporter.hdrIntervals)
    }

    /// Runs every component as a child of one task group (the reporter, trimmers and footprint sampler as tasks
    /// cancelled at the end), watches the run, then stops it in order: generation first, the run's state for
    /// consumer processes, consumption and the bridge, then waits for all of them.
    private func run(_ parts: PipelineParts, start: ContinuousClock.Instant, control: RedisConnection, chaosNode: RedisConnection,
                     failure: FirstFailure) async -> RunEnding {
        let stopGenerating = RunFlag()
        let stopConsuming = RunFlag()
        return await withTaskGroup(of: Void.self) { group in
            parts.context.stages?.begin(serverMilliseconds: parts.context.serverNowMilliseconds)
            for (number, generator) in parts.generators.enumerated() {
                Self.addChild(parts.generators.count == 1 ? "generator" : "generator \(number)", to: &group, failure: failure) { try await generator.run(shouldStop: { stopGenerating.isSet }) }
            }
            let bridge = parts.bridge
            Self.addChild("bridge", to: &group, failure: failure) { try await bridge.run() }
            for (number, sweeper) in parts.sweepers.enumerated() {
                Self.addChild(parts.sweepers.count == 1 ? "sweeper" : "sweeper \(number)", to: &group, failure: failure) { try await sweeper.run(shouldStop: { stopConsuming.isSet }) }
            }
            for consumer in parts.consumers {
                Self.addChild(consumer.stats.name, to: &group, failure: failure) { try await consumer.runUntilStoppedOrCrashed(shouldStop: { stopConsuming.isSet }) }
            }
            let leases = parts.leases
            group.addTask { await leases.run(shouldStop: { stopConsuming.isSet }) }
            let (reporter, footprint) = (parts.reporter, parts.footprint)
            let background = [Task { await reporter.run(start: start) }, Task { await footprint.run() }] + parts.trimmers.map { trimmer in Task { await trimmer.run() } }

            let ending = await watch(parts, start: start, control: control, chaosNode: chaosNode, failure: failure, stopConsuming: stopConsuming, group: &group)
            stopGenerating.set()
            await markEnd(parts, control: control, failure: failure)
            stopConsuming.set()
            bridge.stop()
            await group.waitForAll()
            for task in background { task.cancel() }
            for task in background { _ = await task.value }
            return ending
        }
    }

    /// Once generation stopped: waits for the probes if every key is processed, then writes the run's state
    /// (complete or stopped), which consumer processes leave on. After a component failed (Redis may be gone for
    /// longer than --timeout already), one attempt: consumer processes also leave when the heartbeat stops.
    private func markEnd(_ parts: PipelineParts, control: RedisConnection, failure: FirstFailure) async {
        let complete = parts.counters.finished >= configuration.keys
        if complete { await waitForProbes(parts.context) }
        let state: RunMeta.State = complete ? .complete : .stopped
        let markEnd = RedisCommand("HSET", parts.layout.run.meta, "state", state.rawValue)
        if failure.message == nil {
            _ = try? await withRetries(giveUpAfter: configuration.timeout) { try await control.send(markEnd) }
        } else {
            _ = try? await control.send(markEnd)
        }
    }

    /// The report of a run that ended and was verified: its figures, from this process's counters and what the
    /// verification read in Redis; rows of consumers from the shards' tallies (every process), or this process's
    /// own counts when Redis is gone.
    private func makeReport(_ parts: PipelineParts, verification: Verification, duration: Double, histogram: Histogram<UInt64>,
                            server: (description: String, version: String, identity: ServerIdentity),
                            processes: (joined: Int, reported: Int, reconnects: Int, committed: Int)) async -> RunReport {
        let (context, roster) = (parts.context, parts.roster)
        let figures = parts.counters.snapshot()
        let tallies = (try? await readTallies(shards: parts.layout.shards, connections: parts.shardControls))?.perConsumer
            ?? Dictionary(roster.members.map { ($0.name, $0.processed.load(ordering: .relaxed)) }, uniquingKeysWith: +)
        let rows = Self.consumerRows(tallies: tallies, local: roster.members.map(\.name))
        let recoveries = context.recoveries.recoveries
        var report = RunReport(
            verdict: verification.verdict, problems: verification.problems, runID: parts.layout.run.runID,
            redis: server.description, redisVersion: server.version, server: server.identity,
            keysRequested: configuration.keys, keysGenerated: verification.generated, keysProcessed: verification.redisProcessed,
            duplicateCommits: verification.duplicateCommits, duplicateDeliveries: figures.duplicateDeliveries,
            lockSkips: figures.lockSkips, fencedCommits: figures.fencedCommits,
            lost: verification.lost, deadLettered: verification.deadLettered, pendingAtEnd: verification.pending, dueAtEnd: verification.due,
            reclaimed: figures.reclaimed,
            redeliveries: figures.redeliveries, failedWork: figures.failedWork,
            publishedByNotification: figures.publishedByNotification,
            publishedBySweeper: figures.publishedBySweeper,
            subscriberReconnects: parts.bridge.reconnects, connectionReconnects: parts.connections.reconnects + processes.reconnects,
            consumerErrors: figures.consumerErrors,
            generatorWaits: figures.generatorWaits,
            chaos: RunReport.Chaos(crashes: figures.chaosCrashes, stalls: figures.chaosStalls,
                                   subscriberKills: figures.chaosSubscriberKills,
                                   leaseExpiries: figures.leaseExpiries,
                                   recoveries: recoveries.count,
                                   recoveryMaxMs: (recoveries.max()?.seconds ?? 0) * 1000,
                                   recoveryMeanMs: recoveries.isEmpty ? 0 : recoveries.reduce(.zero, +).seconds * 1000 / Double(recoveries.count)),
            durationSec: (duration * 1000).rounded() / 1000,
            throughputKeysPerSec: (Double(parts.counters.finished) / duration).rounded(),
            maxUnexpired: figures.maxUnexpired,
            lateKeys: Self.count(in: histogram, above: configuration.lateAfter), lateAfterMs: configuration.lateAfter.seconds * 1000,
            maxStreamLength: parts.trimmers.reduce(0) { $0 + $1.maxLength },
            latencyMs: LatencySummary(histogram), settings: configuration.reportSettings, consumers: rows)
        report.keysProcessedByClients = verification.clientsProcessed
        let expiredBySweeper = figures.expiredBySweeper
        report.expiredBy = RunReport.ExpiredBy(redis: max(0, report.publishedByNotification + report.publishedBySweeper - expiredBySweeper), sweeper: expiredBySweeper)
        report.expiryLagMs = context.probes.summary()
        report.saturated = report.generatorWaits > 0
        report.footprint = parts.footprint.footprint
        report.consumerProcesses = processes.joined
        report.consumerProcessesReported = processes.reported
        report.stages = context.stages?.figures(samples: parts.reporter.samples)
        return report
    }

    /// Every key is processed: waits, at most the probe window, for the probes' events still to come, so that
    /// Redis's own expiry lag covers the whole run. The run's figures were taken before the wait.
    func waitForProbes(_ context: PipelineContext) async {
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

    /// Recorded latencies (µs) above `threshold`.
    static func count(in histogram: Histogram<UInt64>, above threshold: Duration) -> Int {
        let limit = UInt64(max(0, threshold.seconds * 1_000_000))
        guard histogram.totalCount > 0, histogram.maxRecorded > limit else { return 0 }
        return Int(histogram.count(within: (limit + 1)...histogram.maxRecorded))
    }
}

/// Faults at random moments, for `--chaos`: a consumer crashes (abandons its batch, drops its connection without
/// acking; a replacement joins under a new name), a consumer stalls past its lock TTL and then tries to commit,
/// or the subscriber's connection is killed.
struct ChaosMonkey {
    enum Fault: CaseIterable { case crash, stall, killSubscriber }
    private var next: ContinuousClock.Instant
    /// Set once the user was told that this server refuses chaos's CLIENT commands.
    var warnedPermission = false

    init(start: ContinuousClock.Instant) {
        next = start + .milliseconds(Int.random(in: 300...800))
    }

    /// The fault to inject now, if one is due; schedules the next one 0.2 to 1 s later.
    mutating func due(at now: ContinuousClock.Instant) -> Fault? {
        guard now >= next else { return nil }
        next = now + .milliseconds(Int.random(in: 200...1000))
        return Fault.allCases.randomElement()
    }

    /// `consumer-7` → `consumer-7.r1`, `consumer-7.r1` → `consumer-7.r2`.
    static func replacementName(for name: String) -> String {
        if let dot = name.range(of: ".r", options: .backwards), let generation = Int(name[dot.upperBound...]) {
            return String(name[..<dot.lowerBound]) + ".r\(generation + 1)"
        }
        return name + ".r1"
    }

    /// Kills the connection whose client name is `name` (CLIENT LIST, then CLIENT KILL ID); true if one was killed.
    static func killClient(named name: String, using control: RedisConnection) async throws -> Bool {
        let list = try await control.send("CLIENT", "LIST").string ?? ""
        for line in list.split(whereSeparator: \.isNewline) where line.contains(" name=\(name) ") {
            guard let idField = line.split(separator: " ").first(where: { $0.hasPrefix("id=") }) else { continue }
            let killed = try await control.send("CLIENT", "KILL", "ID", String(idField.dropFirst(3)))
            return killed.int == 1
        }
        return false
    }
}
