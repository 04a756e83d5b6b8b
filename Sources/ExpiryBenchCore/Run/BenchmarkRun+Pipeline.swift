import Histogram
import Synchronization

extension BenchmarkRun {
    /// Sets up the run's keys, runs every component as a child of one task group until the run is complete,
    /// interrupted, failed or stalled, then verifies in Redis and builds the report.
    func runPipeline(endpoint: RedisEndpoint, control: RedisConnection, keyspace: RunKeyspace, version: String, embedded: Bool) async throws -> RunOutcome {
        let configuration = self.configuration
        let scripts = try await RunScripts.load(on: control)
        try await control.send(RedisCommand(["XGROUP", "CREATE", keyspace.stream, keyspace.group, "0", "MKSTREAM"]))
        try await control.send(RedisCommand(["HSET", keyspace.meta, "keys", String(configuration.keys), "consumers", String(configuration.consumers),
                                             "ttl_ms", String(configuration.ttl.milliseconds), "work_ms", String(configuration.work.milliseconds),
                                             "started_ms", String(WallClock.milliseconds())]))
        if configuration.backgroundKeys > 0 {
            say("Writing \(Format.count(configuration.backgroundKeys)) background keys with a 1 h TTL under \(keyspace.prefix)bg: ...")
            let stop = self.stop
            try await BackgroundKeys.write(configuration.backgroundKeys, keyspace: keyspace, on: control, shouldStop: { stop.isRequested })
        }
        let context = PipelineContext(
            keyspace: keyspace, scripts: scripts, configuration: configuration, counters: RunCounters(), latencies: LatencyRecorder(),
            idleEntries: RunFlag(), orphans: OrphanBoard(), recoveries: RecoveryLog(),
            serverOffsetMilliseconds: try await ServerClock.offsetMilliseconds(control))
        let counters = context.counters

        let connections = ConnectionSet(endpoint: endpoint, runID: keyspace.runID, timeout: configuration.timeout)
        defer { connections.closeAll() }
        let bridge = try await ExpirationBridge.start(endpoint: endpoint, connection: try await connections.open("bridge"), context: context)
        defer { bridge.stop() }
        let generator = KeyGenerator(connection: try await connections.open("generator"), context: context)
        let sweeper = configuration.sweeper ? DeadlineSweeper(connection: try await connections.open("sweeper"), context: context) : nil
        let roster = ConsumerRoster()
        var consumers: [StreamConsumer] = []
        for index in 0..<configuration.consumers {
            let stats = ConsumerStats(name: "consumer-\(index)")
            roster.add(stats)
            consumers.append(StreamConsumer(connection: try await connections.open(stats.name), context: context, stats: stats))
        }
        let leases = LeaseKeeper(connection: try await connections.open("leases"), context: context, roster: roster)
        try await leases.renew()
        let trimmer = StreamTrimmer(connection: try await connections.open("trimmer"), keyspace: keyspace, counters: counters,
                                    expireAfter: configuration.keep ? nil : .seconds(3600))
        let reporter = StatsReporter(connection: try await connections.open("reporter"), keyspace: keyspace, counters: counters,
                                     latencies: context.latencies, total: configuration.keys, mode: configuration.progress,
                                     idleEntries: context.idleEntries, reclaimIdle: configuration.reclaimIdle, trimmer: trimmer)

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

        await withTaskGroup(of: Void.self) { group in
            func child(_ name: String, _ body: @escaping @Sendable () async throws -> Void) {
                group.addTask {
                    do { try await body() } catch {
                        failure.record("\(name): \(error)")
                    }
                }
            }

            child("generator") { try await generator.run(shouldStop: { stopGenerating.isSet }) }
            child("bridge") { try await bridge.run() }
            if let sweeper {
                child("sweeper") { try await sweeper.run(shouldStop: { stopConsuming.isSet }) }
            }
            for consumer in consumers {
                child(consumer.stats.name) { try await consumer.runUntilStoppedOrCrashed(shouldStop: { stopConsuming.isSet }) }
            }
            group.addTask { await leases.run(shouldStop: { stopConsuming.isSet }) }
            let reporting = Task { await reporter.run(start: start) }
            let trimming = Task { await trimmer.run() }
            var chaos = configuration.chaos ? ChaosMonkey(start: start) : nil

            // Watch: done, interrupted, failed or stalled; inject faults under --chaos.
            var lastProgress = start
            var lastFinished = 0
            var lastGenerated = 0
            while true {
                try? await Task.sleep(for: .milliseconds(5))
                let now = clock.now
                let finished = counters.finished
                let generated = counters.generated.load(ordering: .relaxed)
                if finished >= configuration.keys { end = now; break }
                if stop.isRequested { interrupted = true; end = now; break }
                if failure.message != nil { end = now; break }
                if configuration.maxDuration > .zero, now - start > configuration.maxDuration { overTime = true; end = now; break }
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
                if let fault = chaos?.due(at: now) {
                    log.info("chaos: \(fault)")
                    switch fault {
                    case .crash:
                        guard let victim = roster.alive.filter({ !$0.crash.isSet }).randomElement() else { break }
                        victim.crash.set()
                        victim.alive.set(false)
                        context.recoveries.crashed(victim.name, at: now)
                        counters.chaosCrashes.add(1, ordering: .relaxed)
                        let replacement = ConsumerStats(name: ChaosMonkey.replacementName(for: victim.name))
                        roster.add(replacement)
                        child(replacement.name) {
                            let consumer = StreamConsumer(connection: try await connections.open(replacement.name), context: context, stats: replacement)
                            try await consumer.runUntilStoppedOrCrashed(shouldStop: { stopConsuming.isSet })
                        }
                    case .stall:
                        roster.alive.filter { !$0.crash.isSet }.randomElement()?.stall.set()
                    case .killSubscriber:
                        if (try? await ChaosMonkey.killClient(named: ExpirationBridge.subscriberName(keyspace), using: control)) == true {
                            counters.chaosSubscriberKills.add(1, ordering: .relaxed)
                        }
                    }
                }
            }
            stopGenerating.set()
            stopConsuming.set()
            bridge.stop()
            await group.waitForAll()
            reporting.cancel()
            trimming.cancel()
            _ = await reporting.value
            _ = await trimming.value
        }
        reporter.finishLine()

        var verification = await verify(control: control, keyspace: keyspace, counters: counters)
        verification.interrupted = interrupted
        verification.stalledFor = stalledFor
        verification.componentFailure = failure.message
        verification.exceededMaxDuration = overTime ? configuration.maxDuration : nil

        let duration = max((end - start).seconds, 1e-6)
        let members = roster.members
        let total = members.reduce(0) { $0 + $1.processed.load(ordering: .relaxed) }
        let rows = members.map { stats -> RunReport.Consumer in
            let processed = stats.processed.load(ordering: .relaxed)
            return RunReport.Consumer(name: stats.name, processed: processed, share: total > 0 ? Double(processed) / Double(total) : 0)
        }
        let recoveries = context.recoveries.recoveries
        let histogram = context.latencies.snapshot()
        let report = RunReport(
            verdict: verification.verdict, problems: verification.problems, runID: keyspace.runID,
            redis: embedded ? "private redis-server \(endpoint.addressDescription)" : endpoint.description, redisVersion: version,
            keysRequested: configuration.keys, keysGenerated: verification.generated, keysProcessed: verification.processedBits,
            duplicateCommits: verification.duplicateCommits, duplicateDeliveries: counters.duplicateDeliveries.load(ordering: .relaxed),
            lockSkips: counters.lockSkips.load(ordering: .relaxed), fencedCommits: counters.fencedCommits.load(ordering: .relaxed),
            lost: verification.lost, deadLettered: verification.deadLettered, pendingAtEnd: verification.pending, dueAtEnd: verification.due,
            reclaimed: counters.reclaimed.load(ordering: .relaxed),
            redeliveries: counters.redeliveries.load(ordering: .relaxed), failedWork: counters.failedWork.load(ordering: .relaxed),
            publishedByNotification: counters.publishedByNotification.load(ordering: .relaxed),
            publishedBySweeper: counters.publishedBySweeper.load(ordering: .relaxed),
            subscriberReconnects: bridge.reconnects, connectionReconnects: connections.reconnects,
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
            maxStreamLength: trimmer.maxLength,
            latencyMs: LatencySummary(histogram), settings: configuration.reportSettings, consumers: rows)
        return RunOutcome(report: report, samples: reporter.samples, latencies: histogram, startedAt: startedAt)
    }

    /// Recorded latencies (µs) above `threshold`.
    static func count(in histogram: Histogram<UInt64>, above threshold: Duration) -> Int {
        let limit = UInt64(max(0, threshold.seconds * 1_000_000))
        guard histogram.totalCount > 0, histogram.maxRecorded > limit else { return 0 }
        return Int(histogram.count(within: (limit + 1)...histogram.maxRecorded))
    }

    /// Reads the end state from Redis: processed and dead-letter bitmaps (and their overlap), the due index, the
    /// group's pending entries. If Redis cannot be reached, the client's own counts stand in, and say so.
    func verify(control: RedisConnection, keyspace: RunKeyspace, counters: RunCounters) async -> Verification {
        var verification = Verification(
            requested: configuration.keys, generated: counters.generated.load(ordering: .relaxed),
            processedBits: counters.committed.load(ordering: .relaxed), firstCommitsCounted: counters.committed.load(ordering: .relaxed),
            duplicateCommits: counters.duplicateCommits.load(ordering: .relaxed), deadLettered: counters.deadLettered.load(ordering: .relaxed),
            pending: 0, due: 0)
        do {
            let overlap = keyspace.prefix + "overlap"
            let replies = try await withRetries(giveUpAfter: configuration.timeout) {
                try await control.pipeline([
                    RedisCommand("BITCOUNT", keyspace.processed),
                    RedisCommand("ZCARD", keyspace.dueIndex),
                    RedisCommand("XPENDING", keyspace.stream, keyspace.group),
                    RedisCommand("XLEN", keyspace.deadLetters),
                    RedisCommand("BITOP", "AND", overlap, keyspace.processed, keyspace.deadBits),
                    RedisCommand("BITCOUNT", overlap),
                    RedisCommand("DEL", overlap),
                ])
            }
            let values = try replies.map { try $0.unwrapped(for: "verification") }
            verification.processedBits = Int(values[0].int ?? 0)
            verification.due = Int(values[1].int ?? 0)
            verification.pending = Int(values[2].array?.first?.int ?? 0)
            verification.deadLettered = Int(values[3].int ?? 0)
            verification.committedAndDeadLettered = Int(values[5].int ?? 0)
        } catch {
            verification.unverifiable = "Redis could not be reached to verify the run (\(error)); the figures are the client's own counts"
        }
        return verification
    }
}

/// Faults at random moments, for `--chaos`: a consumer crashes (abandons its batch, drops its connection without
/// acking; a replacement joins under a new name), a consumer stalls past its lock TTL and then tries to commit,
/// or the subscriber's connection is killed.
struct ChaosMonkey {
    enum Fault: CaseIterable { case crash, stall, killSubscriber }
    private var next: ContinuousClock.Instant

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
