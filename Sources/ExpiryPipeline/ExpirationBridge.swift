import RedisClient

/// Turns the run's expired-key events into stream entries.
///
/// Its subscriptions (connections of their own: one, or one per primary of a cluster) hear every expired key of
/// the run's database and keep only the run's data keys, leases and probes; the bridge publishes them in batches, shard by shard, with the publish-once script, so a key already
/// published (by the sweeper, or by an event heard twice) is never published again.
package struct ExpirationBridge: Sendable {
    /// An expired key of the run: a data key by shard and index, a consumer's lease by consumer and shard, or a
    /// probe with how late its event came.
    package enum Expired: Sendable, Equatable {
        case key(shard: Int, index: Int)
        case lease(consumer: String, shard: Int)
        case probe(deadline: Int64, lagMilliseconds: Int64)

        /// What an expired key's name means for the run, or nil for a key that is not the run's. Called as the
        /// event arrives, so a probe's lag is measured then: now on the server's clock (local clock plus
        /// `serverOffsetMilliseconds`) minus the deadline in its name.
        package static func parse(_ key: String, layout: RunLayout, serverOffsetMilliseconds: Int64 = 0) -> Expired? {
            if let (shard, index) = layout.locate(dataKey: key) { return .key(shard: shard, index: index) }
            if let deadline = layout.probeDeadline(of: key) {
                return .probe(deadline: deadline, lagMilliseconds: WallClock.milliseconds() + serverOffsetMilliseconds - deadline)
            }
            let leasePrefix = layout.run.leasePrefix
            if key.hasPrefix(leasePrefix), let member = LeaseKeeper.Member(String(key.dropFirst(leasePrefix.count))) {
                return .lease(consumer: member.consumer, shard: member.shard)
            }
            return nil
        }
    }

    /// Where a subscription listens: a server, or in a cluster one primary (notifications are node-local).
    package struct Source: Sendable {
        package let endpoint: RedisEndpoint
        package let route: ClusterRoute?
        package init(endpoint: RedisEndpoint, route: ClusterRoute? = nil) {
            self.endpoint = endpoint
            self.route = route
        }
    }

    let subscriptions: [RedisSubscription<Expired>]
    /// One connection per shard, for the publish script (the shard's due index and stream).
    let publishers: [RedisConnection]
    /// For lapsed leases (run-level keys).
    let control: RedisConnection
    let script: LoadedScript
    let layout: RunLayout
    let counters: RunCounters
    let context: PipelineContext

    /// The channel that carries expired-key events of database `db`.
    package static func channel(database db: Int) -> String { "__keyevent@\(db)__:expired" }

    /// Subscribes at every source before returning, so that no key generated after this call goes unheard.
    /// - Parameters:
    ///   - publishers: one connection per shard of `context.layout`, by shard index.
    ///   - control: a connection for the run-level keys (the lease index).
    ///   - prepare: runs on every (re)connection of a subscriber before it subscribes (the run turns the expired
    ///     events back on there, should a restarted server have lost them).
    package static func start(sources: [Source], publishers: [RedisConnection], control: RedisConnection, context: PipelineContext,
                              prepare: ConnectionPreparation? = nil) async throws -> ExpirationBridge {
        let layout = context.layout
        let offset = context.serverOffsetMilliseconds
        var subscriptions: [RedisSubscription<Expired>] = []
        do {
            for (number, source) in sources.enumerated() {
                subscriptions.append(try await RedisSubscription<Expired>.subscribe(
                    to: channel(database: source.endpoint.database), endpoint: source.endpoint, name: subscriberName(layout.run, number: number),
                    timeout: context.settings.timeout, route: source.route,
                    prepare: prepare
                ) { key in Expired.parse(key, layout: layout, serverOffsetMilliseconds: offset) })
            }
        } catch {
            for subscription in subscriptions { subscription.stop() }
            throw error
        }
        return ExpirationBridge(subscriptions: subscriptions, publishers: publishers, control: control, script: context.scripts.publish,
                                layout: layout, counters: context.counters, context: context)
    }

    /// The client name of the run's subscriber connection number `number` (chaos finds it by this name).
    package static func subscriberName(_ keyspace: RunKeyspace, number: Int = 0) -> String {
        "expiry-bench:\(keyspace.runID):subscriber" + (number == 0 ? "" : "-\(number)")
    }

    /// Publishes events until every subscription is stopped and its queue drained.
    package func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for subscription in subscriptions {
                group.addTask { try await relay(subscription) }
            }
            try await group.waitForAll()
        }
    }

    /// Publishes one subscription's events, shard by shard.
    func relay(_ subscription: RedisSubscription<Expired>) async throws {
        while let events = await subscription.messages.take(upTo: 2000) {
            var indices = Array(repeating: [Int](), count: layout.shards.count)
            var lapsed: [LeaseKeeper.Member] = []
            for event in events {
                switch event {
                case .key(let shard, let index): indices[shard].append(index)
                case .lease(let consumer, let shard): lapsed.append(LeaseKeeper.Member(consumer: consumer, shard: shard))
                case .probe(let deadline, let lag): context.probes.heard(deadline: deadline, lagMilliseconds: lag)
                }
            }
            for (shard, heard) in indices.enumerated() where !heard.isEmpty {
                let wanted = heard.sorted()
                let published = try await withRetries(giveUpAfter: context.settings.timeout) {
                    try await publish(wanted, shard: shard)
                }
                counters.add(\.publishedByNotification, published)
                context.gauges.update(shard) { $0.published += published }
            }
            if !lapsed.isEmpty {
                try await withRetries(giveUpAfter: context.settings.timeout) {
                    try await LeaseKeeper.lapsed(lapsed, context: context, connection: control)
                }
            }
        }
    }

    /// Publishes keys of one shard through the publish-once script; returns how many were published (keys no
    /// longer in the due index are skipped).
    func publish(_ indices: [Int], shard: Int = 0) async throws -> Int {
        let keyspace = layout.shards[shard]
        let reply = try await publishers[shard].evalsha(script, keys: [keyspace.dueIndex, keyspace.stream]) { command in
            for index in indices { command.append(index) }
        }
        return Int(reply.int ?? 0)
    }

    /// Stops listening; `run` returns once what was heard is published.
    package func stop() { for subscription in subscriptions { subscription.stop() } }

    /// How many times the subscribers lost their connection (events published meanwhile were lost).
    package var reconnects: Int { subscriptions.reduce(0) { $0 + $1.reconnectCount } }
}
