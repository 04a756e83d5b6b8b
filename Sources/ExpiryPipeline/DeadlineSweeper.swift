import RedisClient

/// Keeps every key on time without taking the events path away from Redis: at its deadline plus `grace` it
/// touches the key, so Redis expires it then and raises its `expired` event, which the bridge publishes. It
/// publishes a key itself (rescues it) only when the key is gone and its event still has not come `rescueAfter`
/// later: keyspace notifications are fire-and-forget, so a subscriber that was away or cut off loses them.
/// Uses the due index, so it and the bridge never publish a key twice. A run has one sweeper per shard.
package struct DeadlineSweeper: Sendable {
    let connection: RedisConnection
    let script: LoadedScript
    let keyspace: ShardKeyspace
    let grace: String
    let rescueAfter: String
    let interval: Duration
    let limit = 2000
    let counters: RunCounters
    let giveUpAfter: Duration
    let gauges: ShardGauges

    /// What one sweep did.
    package struct Sweep: Sendable, Equatable {
        /// Keys published by the sweeper because their event never came.
        package var rescued = 0
        /// Keys touched at their deadline plus grace.
        package var touched = 0
        /// Keys that Redis expired because of those touches (the others it had already expired on its own).
        package var expired = 0
        /// Where the next sweep's touches start (a deadline in ms, exclusive).
        package var cursor = "-inf"
        /// True when a page was full: more keys are due now, and the next sweep should not wait.
        package var more = false
    }

    /// - Parameter shard: the shard to sweep.
    package init(connection: RedisConnection, context: PipelineContext, shard: ShardKeyspace) {
        self.connection = connection
        self.script = context.scripts.sweep
        self.keyspace = shard
        self.grace = String(context.settings.sweeper.grace.milliseconds)
        self.rescueAfter = String(context.settings.sweeper.rescueAfter.milliseconds)
        self.interval = context.settings.sweeper.interval
        self.counters = context.counters
        self.giveUpAfter = context.settings.timeout
        self.gauges = context.gauges
    }

    /// Sweeps every `interval` (at once again while a sweep fills a page) until `shouldStop` says so.
    package func run(shouldStop: @Sendable () -> Bool) async throws {
        var cursor = "-inf"
        while !shouldStop() {
            let sweep = try await sweepOnce(after: cursor)
            cursor = sweep.cursor
            if !sweep.more { try await Task.sleep(for: interval) }
        }
    }

    /// One sweep, touching keys due after `cursor`; counts what it did in the run's counters.
    @discardableResult
    package func sweepOnce(after cursor: String = "-inf") async throws -> Sweep {
        let reply = try await withRetries(giveUpAfter: giveUpAfter) {
            try await connection.evalsha(script, keys: [keyspace.dueIndex, keyspace.stream]) { command in
                command.append(keyspace.dataPrefix)
                command.append(grace)
                command.append(rescueAfter)
                command.append(limit)
                command.append(cursor)
            }
        }
        guard let parts = reply.array, parts.count == 5, let rescued = parts[0].int, let touched = parts[1].int,
              let expired = parts[2].int, let next = parts[3].string, let more = parts[4].int else {
            throw RedisError(.protocolViolation, "sweep script returned \(reply)")
        }
        let sweep = Sweep(rescued: Int(rescued), touched: Int(touched), expired: Int(expired), cursor: next, more: more == 1)
        if sweep.rescued > 0 {
            counters.add(\.publishedBySweeper, sweep.rescued)
            gauges.update(keyspace.shardIndex) { $0.published += sweep.rescued }
        }
        if sweep.expired > 0 { counters.add(\.expiredBySweeper, sweep.expired) }
        return sweep
    }
}
