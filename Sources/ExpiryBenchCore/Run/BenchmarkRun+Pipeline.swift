import Histogram
import Synchronization
import ExpiryPipeline
import RedisClient

extension BenchmarkRun {
    /// Sets up the run's keys and components, runs them as the services of one group (`RunSupervisor`) until the
    /// run is complete, interrupted, failed or stalled, then verifies in Redis and builds the report.
    /// - Parameters:
    ///   - control: a connection for the run-level keys (meta, leases).
    ///   - nodes: one connection per primary (the server itself when not a cluster).
    ///   - settingChanges: where the bridge notes the nodes whose setting it changed on a reconnection.
    ///   - replicas: the replicas of the (single) primary, for the verdict's scope.
    ///   - evictionsAtStart: `evicted_keys` and `maxmemory-policy` of every primary before the run wrote anything.
    func runPipeline(servers: RunServers, control: RedisConnection, nodes: [RedisConnection], keyspace: RunKeyspace, version: String, identity: ServerIdentity, embedded: Bool,
                     settingChanges: NodeSettingChanges, replicas: Int = 0, evictionsAtStart: Evictions.Reading? = nil) async throws -> RunOutcome {
        let connections = ConnectionSet(servers: servers, runID: keyspace.runID, timeout: configuration.timeout,
                                        acknowledgement: configuration.pipelineSettings.consumer.replicaAcknowledgement(timeout: configuration.timeout))
        defer { connections.closeAll() }
        let parts = try await PipelineParts.assemble(configuration, servers: servers, control: control, keyspace: keyspace, connections: connections,
                                                     settingChanges: settingChanges, stop: stop, say: status)
        defer { parts.bridge.stop() }
        let startedAtMilliseconds = WallClock.milliseconds()
        let startedAt = Double(startedAtMilliseconds) / 1000
        var supervisor = RunSupervisor(configuration: configuration, stop: stop, say: status, parts: parts, control: control, chaosNode: nodes[0])
        let failoverSource = FailoverSource(servers)
        supervisor.failovers = failoverSource.map { FailoverWatch(source: $0, counters: parts.counters, since: startedAtMilliseconds) }
        if configuration.chaosFailover, let failoverSource {
            supervisor.failoverChaos = FailoverChaos(source: failoverSource, endpoint: servers.endpoint, counters: parts.counters, keys: configuration.keys,
                                                     timeout: configuration.timeout, runID: keyspace.runID)
        }
        let (failure, start) = (supervisor.failure, supervisor.start)
        let ending = await supervisor.run()
        parts.reporter.finishLine()

        let processes = await ProcessReports.collect(keyspace: keyspace, control: control, context: parts.context, timeout: configuration.timeout, stop: stop)
        let patience = failure.message == nil ? configuration.timeout : .seconds(1)
        // The end is read on connections that wait for no replica: under --wait-replicas a read must not fail
        // because the replicas fell behind (a failover), and the run's own connections may be broken.
        let readers = (try? await connections.openPerShard("verify", layout: parts.layout, acknowledged: false, patience: patience)) ?? parts.shardControls
        var verification = await Verification.read(requested: configuration.keys, shards: parts.layout.shards, connections: readers, server: servers.endpoint.addressDescription,
                                                   counters: parts.counters, confirmed: parts.context.confirmed, reportedCommits: processes.committed, patience: patience)
        var cpuAtEnd: Double?
        if let evictionsAtStart {
            // One try where the end could not be read: the run must not wait again for a server that is gone.
            let end = await Evictions.Reading.read(nodes, patience: verification.unreadable == nil ? .seconds(1) : .zero)
            verification.evictions = Evictions(start: evictionsAtStart, end: end)
            cpuAtEnd = end.cpuSeconds
        }
        verification.interrupted = ending.interrupted
        verification.stalledFor = ending.stalledFor
        verification.componentFailure = failure.message
        verification.writesRefused = failure.writeRefusal.map {
            RunError.writesRefused($0, by: "the run", endpoint: servers.endpoint, policy: verification.evictions?.policy).message
        }
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
        report.failovers = supervisor.failovers?.failovers(lost: verification.lost, duplicates: verification.duplicateCommits)
        report.saturated = RunReport.saturated(report.figures, stalled: verification.stalledFor != nil, failed: verification.componentFailure != nil,
                                               failovers: report.failovers?.count ?? 0)
        if let asked = supervisor.failoverChaos?.asked {
            report.chaos.failoverAskedAtMs = asked.atMs
            report.chaos.failoverAskedOf = asked.node
            report.chaos.failoverAnswer = asked.answer
        }
        let cpu = RedisCPU(start: evictionsAtStart?.cpuSeconds, end: cpuAtEnd, keys: parts.counters.finished, duration: report.durationSec)
        (report.redisCpuUsPerKey, report.redisCpuShare) = (cpu.microsecondsPerKey, cpu.share)
        if cpu.share == nil {
            let why = verification.evictions?.unknown ?? "INFO cpu could not be read on every primary"
            report.unknown = (report.unknown ?? [:]).merging(["redis_cpu_us_per_key": why, "redis_cpu_share": why]) { old, _ in old }
        }
        report.thresholds = RunReport.thresholdResults(configuration.thresholds, report: report, abort: ending.abort)
        // What was verified is on the primary; replicas the writes did not wait for may lack the last of them.
        if servers.cluster == nil, replicas > configuration.waitReplicas { report.replicasNotChecked = replicas - configuration.waitReplicas }
        var outcome = RunOutcome(report: report, samples: parts.reporter.samples, latencies: histogram, startedAt: startedAt, hdrIntervals: parts.reporter.hdrIntervals)
        if let error = failure.error as? RedisError, error.isClientLimit {
            // Verified: the run's connections can go, and make room to read the limit.
            connections.closeAll()
            outcome.cause = await clientLimitFailure(servers, control: control)
        }
        return outcome
    }

    /// The report of a run that ended and was verified: its figures, from this process's counters and what the
    /// verification read in Redis; rows of consumers from the shards' tallies (every process), or this process's
    /// own counts when Redis is gone.
    private func makeReport(_ parts: PipelineParts, verification: Verification, duration: Double, histogram: Histogram<UInt64>,
                            server: (description: String, version: String, identity: ServerIdentity),
                            processes: ProcessReports) async -> RunReport {
        let (context, roster) = (parts.context, parts.roster)
        let figures = parts.counters.snapshot()
        // The tallies as the verification read them; read again only if it could not (Redis may be back).
        var tallies = verification.commitsPerConsumer
        if tallies == nil { tallies = (try? await Tallies.read(shards: parts.layout.shards, connections: parts.shardControls))?.perConsumer }
        let rows = RunReport.Consumer.rows(tallies: tallies ?? Dictionary(roster.members.map { ($0.name, $0.processed.load(ordering: .relaxed)) }, uniquingKeysWith: +),
                                           local: roster.members.map(\.name))
        let recoveries = context.recoveries.recoveries
        // The counters, with what the verification read in Redis in place of the client's own counts; where it
        // could not read them, the counts are unknown (null in the JSON), not the client's under Redis's name.
        var verified = figures
        verified.duplicateCommits = verification.duplicateCommits ?? figures.duplicateCommits
        verified.deadLettered = verification.held?.deadLettered ?? figures.deadLettered
        var report = RunReport(RunReport.Findings(
            verdict: verification.verdict, problems: verification.problems, runID: parts.layout.run.runID,
            redis: server.description, redisVersion: server.version, server: server.identity,
            keysRequested: configuration.keys, keysGenerated: verification.generated, keysProcessed: verification.redisProcessed,
            lost: verification.lost, unprocessed: verification.held?.unprocessed, pendingAtEnd: verification.held?.pending, dueAtEnd: verification.held?.due,
            unknown: verification.unknownFields,
            subscriberReconnects: parts.bridge.reconnects, connectionReconnects: parts.connections.reconnects + processes.reconnects,
            chaos: RunReport.Chaos(crashes: figures.chaosCrashes, stalls: figures.chaosStalls,
                                   subscriberKills: figures.chaosSubscriberKills,
                                   leaseExpiries: figures.leaseExpiries,
                                   recoveries: recoveries.count,
                                   recoveryMaxMs: (recoveries.max()?.seconds ?? 0) * 1000,
                                   recoveryMeanMs: recoveries.isEmpty ? 0 : recoveries.reduce(.zero, +).seconds * 1000 / Double(recoveries.count)),
            durationSec: (duration * 1000).rounded() / 1000,
            throughputKeysPerSec: (Double(parts.counters.finished) / duration).rounded(),
            lateKeys: Self.count(in: histogram, above: configuration.lateAfter), lateAfterMs: configuration.lateAfter.seconds * 1000,
            maxStreamLength: parts.trimmers.reduce(0) { $0 + $1.maxLength },
            latencyMs: LatencySummary(histogram), settings: configuration.reportSettings, consumers: rows), figures: verified)
        report.keysProcessedByClients = verification.clientsProcessed
        report.evictedKeysDuringRun = verification.evictions?.count
        report.maxmemoryPolicy = verification.evictions?.policy
        if configuration.waitReplicas > 0 { report.unconfirmedWrites = parts.connections.unconfirmed }
        let expiredBySweeper = figures.expiredBySweeper
        report.expiredBy = RunReport.ExpiredBy(redis: max(0, report.publishedByNotification + report.publishedBySweeper - expiredBySweeper), sweeper: expiredBySweeper)
        report.expiryLagMs = context.probes.summary(serverNow: context.serverNowMilliseconds)
        report.footprint = parts.footprint.footprint
        report.consumerProcesses = processes.joined
        report.consumerProcessesReported = processes.reported
        report.stages = context.stages?.figures(samples: parts.reporter.samples)
        return report
    }

    /// Recorded latencies (µs) above `threshold`.
    static func count(in histogram: Histogram<UInt64>, above threshold: Duration) -> Int {
        let limit = UInt64(max(0, threshold.seconds * 1_000_000))
        guard histogram.totalCount > 0, histogram.maxRecorded > limit else { return 0 }
        return Int(histogram.count(within: (limit + 1)...histogram.maxRecorded))
    }
}
