import Histogram
import Synchronization
import RedisClient

extension BenchmarkRun {
    /// Sets up the run's keys, runs every component as a child of one task group until the run is complete,
    /// interrupted, failed or stalled, then verifies in Redis and builds the report.
    /// - Parameters:
    ///   - control: a connection for the run-level keys (meta, leases).
    ///   - nodes: one connection per primary (the server itself when not a cluster).
    func runPipeline(servers: RunServers, control: RedisConnection, nodes: [RedisConnection], keyspace: RunKeyspace, version: String, identity: ServerIdentity, embedded: Bool) async throws -> RunOutcome {
        let configuration = self.configuration
        let endpoint = servers.endpoint
        let scripts = try await RunScripts.load(on: control)
        let layout = servers.layout(run: keyspace, shards: configuration.shards ?? servers.defaultShardCount)
        let connections = ConnectionSet(servers: servers, runID: keyspace.runID, timeout: configuration.timeout)
        defer { connections.closeAll() }
        let shardControls = try await connections.openPerShard("control", layout: layout)
        for (shard, connection) in zip(layout.shards, shardControls) {
            try await connection.send(RedisCommand(["XGROUP", "CREATE", shard.stream, shard.group, "0", "MKSTREAM"]))
        }
        try await control.send(RedisCommand(["HSET", keyspace.meta] + RunMeta.fields(configuration, layout: layout)))
        if configuration.backgroundKeys > 0 {
            say("Writing \(Format.count(configuration.backgroundKeys)) background keys with a 1 h TTL under \(keyspace.prefix) ...")
            let stop = self.stop
            for (shard, connection) in zip(layout.shards, shardControls) {
                let count = configuration.backgroundKeys / layout.shards.count + (shard.shardIndex < configuration.backgroundKeys % layout.shards.count ? 1 : 0)
                try await BackgroundKeys.write(count, keyspace: shard, on: connection, shouldStop: { stop.isRequested })
            }
        }
        let context = PipelineContext(
            keyspace: keyspace, layout: layout, scripts: scripts, configuration: configuration, counters: RunCounters(), latencies: LatencyRecorder(intervals: configuration.hdrIntervals),
            serverOffsetMilliseconds: try await ServerClock.offsetMilliseconds(control))
        let counters = context.counters
        let footprint = FootprintSampler(
            shards: zip(layout.shards, shardControls).map { FootprintSampler.Shard(keyspace: $0, connection: $1, node: servers.node(of: $0)) },
            script: scripts.footprint, database: endpoint.database, cluster: servers.cluster != nil)
        do { try await footprint.start() } catch { log.debug("footprint not sampled: \(error)") }

        let bridge = try await ExpirationBridge.start(sources: servers.subscriptionSources(), publishers: try await connections.openPerShard("publisher", layout: layout),
                                                      control: try await connections.open("bridge", for: keyspace.leases), context: context)
        defer { bridge.stop() }
        var generators: [KeyGenerator] = []
        var sweepers: [DeadlineSweeper] = []
        var trimmers: [StreamTrimmer] = []
        // Keys go to the shards in proportion to their consumers here (a driver's consumers run elsewhere: evenly).
        let weights = layout.shards.indices.map { shard in
            configuration.role == .driver ? 1 : (0..<configuration.consumers).filter { layout.shard(forConsumer: $0) == shard }.count
        }
        let ranges = RunLayout.ranges(keys: configuration.keys, weights: weights)
        for shard in layout.shards {
            let suffix = layout.shards.count == 1 ? "" : "-\(shard.shardIndex)"
            generators.append(KeyGenerator(connection: try await connections.open("generator" + suffix, for: shard.stream), context: context, shard: shard,
                                           indices: ranges[shard.shardIndex]))
            if configuration.sweeper {
                sweepers.append(DeadlineSweeper(connection: try await connections.open("sweeper" + suffix, for: shard.stream), context: context, shard: shard))
            }
            trimmers.append(StreamTrimmer(connection: try await connections.open("trimmer" + suffix, for: shard.stream), keyspace: shard, gauges: context.gauges,
                                          reclaimIdle: configuration.reclaimIdle, expireAfter: configuration.keep ? nil : .seconds(3600)))
        }
        let roster = ConsumerRoster()
        var consumers: [StreamConsumer] = []
        for index in 0..<configuration.consumers {
            let stats = ConsumerStats(name: "consumer-\(index)", shard: layout.shard(forConsumer: index))
            roster.add(stats)
            consumers.append(try await connections.consumer(stats, context: context))
        }
        let leases = LeaseKeeper(connection: try await connections.open("leases", for: keyspace.leases), context: context, roster: roster)
        try await leases.renew()
        let reporter = StatsReporter(counters: counters, latencies: context.latencies, total: configuration.keys, mode: configuration.progress, trimmers: trimmers,
                                     metrics: configuration.metrics)

        let stopGenerating = RunFlag()
        let stopConsuming = RunFlag()
        let failure = FirstFailure()
        let clock = ContinuousClock()
        let start = clock.now
        let startedAt = Double(WallClock.milliseconds()) / 1000
        var end = start
        var interrupted = false
        var stalledFor: Duration?
        var overTime = false
        var abort: ThresholdWatch.Abort?

        await withTaskGroup(of: Void.self) { group in
            func child(_ name: String, _ body: @escaping @Sendable () async throws -> Void) {
                group.addTask {
                    do { try await body() } catch {
                        failure.record("\(name): \(error)")
                    }
                }
            }

            context.stages?.begin(serverMilliseconds: context.serverNowMilliseconds)
            for (number, generator) in generators.enumerated() {
                child(generators.count == 1 ? "generator" : "generator \(number)") { try await generator.run(shouldStop: { stopGenerating.isSet }) }
            }
            child("bridge") { try await bridge.run() }
            for (number, sweeper) in sweepers.enumerated() {
                child(sweepers.count == 1 ? "sweeper" : "sweeper \(number)") { try await sweeper.run(shouldStop: { stopConsuming.isSet }) }
            }
            for consumer in consumers {
                child(consumer.stats.name) { try await consumer.runUntilStoppedOrCrashed(shouldStop: { stopConsuming.isSet }) }
            }
            group.addTask { await leases.run(shouldStop: { stopConsuming.isSet }) }
            let reporting = Task { await reporter.run(start: start) }
            let trimming = trimmers.map { trimmer in Task { await trimmer.run() } }
            let sampling = Task { await footprint.run() }
            var chaos = configuration.chaos ? ChaosMonkey(start: start) : nil

            // Watch: done, interrupted, failed or stalled; inject faults under --chaos.
            var lastProgress = start
            var lastFinished = 0
            var lastGenerated = 0
            var lastBeat = start
            var watch = configuration.abortOnFail ? ThresholdWatch(configuration.thresholds, start: start) : nil
            while true {
                try? await Task.sleep(for: .milliseconds(5))
                let now = clock.now
                let finished = counters.finished
                let generated = counters.generated.load(ordering: .relaxed)
                if finished >= configuration.keys { end = now; break }
                if stop.isRequested { interrupted = true; end = now; break }
                if failure.message != nil { end = now; break }
                if configuration.maxDuration > .zero, now - start > configuration.maxDuration { overTime = true; end = now; break }
                if let failed = watch?.failure(at: now, latencies: context.latencies) { abort = failed; interrupted = true; end = now; break }
                if finished != lastFinished || generated != lastGenerated {
                    lastProgress = now
                    lastFinished = finished
                    lastGenerated = generated
                }
                // Keys still inside their TTL are not a stall: wait for them first.
                if now - (lastProgress + configuration.ttl) > configuration.stallTimeout {
                    stalledFor = now - lastProgress
                    end = now
                    break
                }
                // A heartbeat for consumer processes, and the same safety TTL for the run-level keys as the
                // shards' (see StreamTrimmer).
                if now - lastBeat > .seconds(1) {
                    lastBeat = now
                    var commands = [RedisCommand("HSET", keyspace.meta, "driver_ms", String(context.serverNowMilliseconds))]
                    if !configuration.keep { commands += keyspace.runBookkeepingKeys.map { RedisCommand("PEXPIRE", $0, "3600000") } }
                    _ = try? await control.pipeline(commands)
                }
                if let fault = chaos?.due(at: now) {
                    log.info("chaos: \(fault)")
                    switch fault {
                    case .crash:
                        guard let victim = roster.alive.filter({ !$0.crash.isSet }).randomElement() else { break }
                        victim.crash.set()
                        victim.alive.set(false)
                        context.recoveries.crashed(victim.name, at: now)
                        counters.chaosCrashes.add(1, ordering: .relaxed)
                        let replacement = ConsumerStats(name: ChaosMonkey.replacementName(for: victim.name), shard: victim.shard)
                        roster.add(replacement)
                        child(replacement.name) {
                            let consumer = try await connections.consumer(replacement, context: context)
                            try await consumer.runUntilStoppedOrCrashed(shouldStop: { stopConsuming.isSet })
                        }
                    case .stall:
                        roster.alive.filter { !$0.crash.isSet }.randomElement()?.stall.set()
                    case .killSubscriber:
                        do {
                            if try await ChaosMonkey.killClient(named: ExpirationBridge.subscriberName(keyspace), using: nodes[0]) {
                                counters.chaosSubscriberKills.add(1, ordering: .relaxed)
                            }
                        } catch let error as RedisError where error.serverSays("NOPERM") {
                            if chaos?.warnedPermission == false {
                                chaos?.warnedPermission = true
                                Diagnostics.warn("--chaos cannot disconnect the subscriber: this user may not run CLIENT LIST and CLIENT KILL (\(error.serverMessage ?? "")); grant +client|list +client|kill to have it. Crashes and stalls go on.")
                            }
                        } catch {}
                    }
                }
            }
            stopGenerating.set()
            if counters.finished >= configuration.keys { await waitForProbes(context) }
            // Consumer processes leave when they read this. After a component failed (Redis may be gone for
            // longer than --timeout already), one attempt: consumer processes also leave when the heartbeat stops.
            let state: RunMeta.State = counters.finished >= configuration.keys ? .complete : .stopped
            let markEnd = RedisCommand("HSET", keyspace.meta, "state", state.rawValue)
            if failure.message == nil {
                _ = try? await withRetries(giveUpAfter: configuration.timeout) { try await control.send(markEnd) }
            } else {
                _ = try? await control.send(markEnd)
            }
            stopConsuming.set()
            bridge.stop()
            await group.waitForAll()
            reporting.cancel()
            for task in trimming { task.cancel() }
            sampling.cancel()
            _ = await sampling.value
            _ = await reporting.value
            for task in trimming { _ = await task.value }
        }
        reporter.finishLine()

        let processes = await collectProcessReports(keyspace: keyspace, control: control, context: context)
        var verification = await verify(shards: layout.shards, connections: shardControls, counters: counters, reportedCommits: processes.committed,
                                        patience: failure.message == nil ? configuration.timeout : .seconds(1))
        verification.interrupted = interrupted
        verification.stalledFor = stalledFor
        verification.componentFailure = failure.message
        verification.exceededMaxDuration = overTime ? configuration.maxDuration : nil
        verification.abortedBy = abort?.description
        if stalledFor != nil, configuration.consumers == 0, processes.joined == 0 {
            verification.componentFailure = "no consumer took part: this driver has --consumers 0 and no process joined with --role consumer --run-id \(keyspace.runID)"
        }

        let duration = max((end - start).seconds, 1e-6)
        // Rows from the tallies (every process); if Redis is gone, this process's own counts.
        let tallies = (try? await readTallies(shards: layout.shards, connections: shardControls))?.perConsumer
            ?? Dictionary(roster.members.map { ($0.name, $0.processed.load(ordering: .relaxed)) }, uniquingKeysWith: +)
        let rows = Self.consumerRows(tallies: tallies, local: roster.members.map(\.name))
        let recoveries = context.recoveries.recoveries
        let histogram = context.latencies.snapshot()
        var report = RunReport(
            verdict: verification.verdict, problems: verification.problems, runID: keyspace.runID,
            redis: embedded ? "private redis-server \(endpoint.addressDescription)" : servers.cluster != nil ? "Redis Cluster \(endpoint.description)" : endpoint.description,
            redisVersion: version, server: identity,
            keysRequested: configuration.keys, keysGenerated: verification.generated, keysProcessed: verification.redisProcessed,
            duplicateCommits: verification.duplicateCommits, duplicateDeliveries: counters.duplicateDeliveries.load(ordering: .relaxed),
            lockSkips: counters.lockSkips.load(ordering: .relaxed), fencedCommits: counters.fencedCommits.load(ordering: .relaxed),
            lost: verification.lost, deadLettered: verification.deadLettered, pendingAtEnd: verification.pending, dueAtEnd: verification.due,
            reclaimed: counters.reclaimed.load(ordering: .relaxed),
            redeliveries: counters.redeliveries.load(ordering: .relaxed), failedWork: counters.failedWork.load(ordering: .relaxed),
            publishedByNotification: counters.publishedByNotification.load(ordering: .relaxed),
            publishedBySweeper: counters.publishedBySweeper.load(ordering: .relaxed),
            subscriberReconnects: bridge.reconnects, connectionReconnects: connections.reconnects + processes.reconnects,
            consumerErrors: counters.consumerErrors.load(ordering: .relaxed),
            generatorWaits: counters.generatorWaits.load(ordering: .relaxed),
            chaos: RunReport.Chaos(crashes: counters.chaosCrashes.load(ordering: .relaxed), stalls: counters.chaosStalls.load(ordering: .relaxed),
                                   subscriberKills: counters.chaosSubscriberKills.load(ordering: .relaxed),
                                   leaseExpiries: counters.leaseExpiries.load(ordering: .relaxed),
                                   recoveries: recoveries.count,
                                   recoveryMaxMs: (recoveries.max()?.seconds ?? 0) * 1000,
                                   recoveryMeanMs: recoveries.isEmpty ? 0 : recoveries.reduce(.zero, +).seconds * 1000 / Double(recoveries.count)),
            durationSec: (duration * 1000).rounded() / 1000,
            throughputKeysPerSec: (Double(counters.finished) / duration).rounded(),
            maxUnexpired: counters.maxUnexpired.load(ordering: .relaxed),
            lateKeys: Self.count(in: histogram, above: configuration.lateAfter), lateAfterMs: configuration.lateAfter.seconds * 1000,
            maxStreamLength: trimmers.reduce(0) { $0 + $1.maxLength },
            latencyMs: LatencySummary(histogram), settings: configuration.reportSettings, consumers: rows)
        report.shards = zip(layout.shards, verification.processedPerShard).map { shard, processed in
            RunReport.Shard(name: shard.shardTag ?? "-", node: servers.node(of: shard), keysProcessed: processed)
        }
        report.keysProcessedByClients = verification.clientsProcessed
        report.expiredBy = RunReport.ExpiredBy(redis: max(0, report.publishedByNotification + report.publishedBySweeper - counters.expiredBySweeper.load(ordering: .relaxed)),
                                               sweeper: counters.expiredBySweeper.load(ordering: .relaxed))
        report.expiryLagMs = context.probes.summary()
        report.saturated = report.generatorWaits > 0
        report.footprint = footprint.footprint
        report.consumerProcesses = processes.joined
        report.consumerProcessesReported = processes.reported
        report.stages = context.stages?.figures(samples: reporter.samples)
        report.thresholds = RunReport.thresholdResults(configuration.thresholds, report: report, abort: abort)
        return RunOutcome(report: report, samples: reporter.samples, latencies: histogram, startedAt: startedAt, hdrIntervals: reporter.hdrIntervals)
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
