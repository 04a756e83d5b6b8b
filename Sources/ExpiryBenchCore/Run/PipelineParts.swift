import ExpiryPipeline
import RedisClient

/// Every component of a run's pipeline in this process, built and connected, not yet running: what
/// `assemble` makes, `RunSupervisor` runs and watches, and `BenchmarkRun.runPipeline` reports on.
struct PipelineParts {
    let layout: RunLayout
    let context: PipelineContext
    let connections: ConnectionSet
    /// One connection per shard, for the run's set-up, its verification and its tallies.
    let shardControls: [RedisConnection]
    let footprint: FootprintSampler
    let bridge: ExpirationBridge
    let generators: [KeyGenerator]
    let sweepers: [DeadlineSweeper]
    let trimmers: [StreamTrimmer]
    let roster: ConsumerRoster
    let consumers: [StreamConsumer]
    let leases: LeaseKeeper
    let reporter: StatsReporter

    var counters: RunCounters { context.counters }

    /// The connections a driver's run opens, as `assemble` and `BenchmarkRun` open them: one per consumer; per
    /// shard its control, publisher, generator, trimmer and sweeper; per primary the bridge's subscriber and the
    /// record of the notification setting; the run's control, the bridge's and the leases'; in a cluster, an
    /// admin connection per primary and one for the run-level keys.
    static func connectionCount(_ configuration: RunConfiguration, shards: Int, primaries: Int, cluster: Bool) -> RunError.ClientNeed {
        let perShard = 4 + (configuration.sweeper ? 1 : 0)
        let others = shards * perShard + primaries * 2 + 3 + (cluster ? primaries + 1 : 0)
        return RunError.ClientNeed(connections: configuration.consumers + others, consumers: configuration.consumers)
    }
}

extension PipelineParts {
    /// Creates the run's groups and meta, writes the background keys, and builds every component of the pipeline
    /// on connections of its own (`connections`, closed by the caller).
    static func assemble(_ configuration: RunConfiguration, servers: RunServers, control: RedisConnection, keyspace: RunKeyspace, connections: ConnectionSet,
                         settingChanges: NodeSettingChanges, stop: StopSignal, say: @Sendable (String) -> Void) async throws -> PipelineParts {
        let scripts = try await RunScripts.load(on: control)
        let layout = servers.layout(run: keyspace, shards: configuration.shards ?? servers.defaultShardCount)
        let shardControls = try await connections.openPerShard("control", layout: layout)
        let footprint = FootprintSampler(
            shards: zip(layout.shards, shardControls).map { FootprintSampler.Shard(keyspace: $0, connection: $1, node: servers.node(of: $0)) },
            script: scripts.footprint, database: servers.endpoint.database, cluster: servers.cluster != nil)
        // The user's keys with a TTL, before the run's own (every key of the run carries one from its first write:
        // only the meta hash exists yet, on `control`'s node).
        let own = (try? await RunCleanup.remaining(of: keyspace, on: control)).map { $0.keys - $0.withoutTTL } ?? 0
        do { try await footprint.readBefore(excluding: own) } catch { log.debug("keys with a TTL before the run not read: \(error)") }
        for (shard, connection) in zip(layout.shards, shardControls) {
            try await shard.create(on: connection, safetyTTL: configuration.safetyTTL)
        }
        try await control.send(RedisCommand(["HSET", keyspace.meta] + RunMeta.fields(configuration, layout: layout)))
        try await writeBackgroundKeys(configuration.backgroundKeys, layout: layout, shardControls: shardControls, stop: stop, say: say)
        let context = PipelineContext(
            keyspace: keyspace, layout: layout, scripts: scripts, settings: configuration.pipelineSettings, counters: RunCounters(), latencies: LatencyRecorder(intervals: configuration.hdrIntervals),
            serverOffsetMilliseconds: try await ServerClock.offsetMilliseconds(control))
        do { try await footprint.start() } catch { log.debug("footprint not sampled: \(error)") }

        let bridge = try await ExpirationBridge.start(sources: servers.subscriptionSources(), publishers: try await connections.openPerShard("publisher", layout: layout),
                                                      control: try await connections.open("bridge", for: keyspace.leases), context: context,
                                                      prepare: { NotificationSettings.reapply(on: $0, $1, changed: settingChanges) })
        do {
            let (generators, sweepers, trimmers) = try await shardComponents(configuration, context: context, connections: connections)
            let roster = ConsumerRoster()
            var consumers: [StreamConsumer] = []
            for index in 0..<configuration.consumers {
                let stats = ConsumerStats(name: "consumer-\(index)", shard: layout.shard(forConsumer: index))
                roster.add(stats)
                consumers.append(try await connections.consumer(stats, context: context))
            }
            let leases = LeaseKeeper(connection: try await connections.open("leases", for: keyspace.leases), context: context, roster: roster)
            do {
                try await leases.renew()
            } catch let error as RedisError where error.isRunGone {
                // The run's keys went already (evicted, flushed): the run goes on to say so in its report.
                log.debug("the first lease renewal found the run's keys gone: \(error)")
            }
            let reporter = StatsReporter(counters: context.counters, latencies: context.latencies, total: configuration.keys, mode: configuration.progress,
                                         trimmers: trimmers, metrics: configuration.metrics)
            return PipelineParts(layout: layout, context: context, connections: connections, shardControls: shardControls, footprint: footprint,
                                 bridge: bridge, generators: generators, sweepers: sweepers, trimmers: trimmers, roster: roster,
                                 consumers: consumers, leases: leases, reporter: reporter)
        } catch {
            // The subscribers run on threads of their own: stop them, or a reconnection could turn the expired
            // events back on after the run's cleanup restored the setting.
            bridge.stop()
            throw error
        }
    }

    /// `--background-keys`, spread evenly over the shards.
    private static func writeBackgroundKeys(_ total: Int, layout: RunLayout, shardControls: [RedisConnection], stop: StopSignal,
                                            say: @Sendable (String) -> Void) async throws {
        guard total > 0 else { return }
        say("Writing \(Format.count(total)) background keys with a 1 h TTL under \(layout.run.prefix) ...")
        for (shard, connection) in zip(layout.shards, shardControls) {
            let count = total / layout.shards.count + (shard.shardIndex < total % layout.shards.count ? 1 : 0)
            try await BackgroundKeys.write(count, keyspace: shard, on: connection, shouldStop: { stop.isRequested })
        }
    }

    /// Each shard's generator, sweeper (unless `--sweeper off`) and trimmer. Keys go to the shards in proportion
    /// to their consumers here (a driver's consumers run elsewhere: evenly).
    private static func shardComponents(_ configuration: RunConfiguration, context: PipelineContext, connections: ConnectionSet) async throws -> ([KeyGenerator], [DeadlineSweeper], [StreamTrimmer]) {
        let layout = context.layout
        let weights = layout.shards.indices.map { shard in
            configuration.role == .driver ? 1 : (0..<configuration.consumers).filter { layout.shard(forConsumer: $0) == shard }.count
        }
        let ranges = RunLayout.ranges(keys: configuration.keys, weights: weights)
        var generators: [KeyGenerator] = []
        var sweepers: [DeadlineSweeper] = []
        var trimmers: [StreamTrimmer] = []
        for shard in layout.shards {
            let suffix = layout.shards.count == 1 ? "" : "-\(shard.shardIndex)"
            generators.append(KeyGenerator(connection: try await connections.open("generator" + suffix, for: shard.stream), context: context, shard: shard,
                                           indices: ranges[shard.shardIndex]))
            if configuration.sweeper {
                sweepers.append(DeadlineSweeper(connection: try await connections.open("sweeper" + suffix, for: shard.stream), context: context, shard: shard))
            }
            trimmers.append(StreamTrimmer(connection: try await connections.open("trimmer" + suffix, for: shard.stream), keyspace: shard, gauges: context.gauges,
                                          reclaimIdle: context.settings.consumer.reclaimIdle, expireAfter: configuration.keep ? nil : .seconds(3600)))
        }
        return (generators, sweepers, trimmers)
    }
}
