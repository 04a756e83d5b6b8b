/// Turns the run's expired-key events into stream entries.
///
/// Its subscription (a connection of its own) hears every expired key of the run's database and keeps only
/// the run's data keys; the bridge publishes them in batches with the publish-once script, so a key already
/// published (by the sweeper, or by an event heard twice) is never published again.
public struct ExpirationBridge: Sendable {
    /// An expired key of the run: a data key by index, or a consumer's lease by consumer name.
    public enum Expired: Sendable, Equatable {
        case key(Int)
        case lease(String)

        /// What an expired key's name means for the run, or nil for a key that is not the run's.
        public static func parse(_ key: String, keyspace: RunKeyspace) -> Expired? {
            if let index = keyspace.index(ofDataKey: key) { return .key(index) }
            if key.hasPrefix(keyspace.leasePrefix) { return .lease(String(key.dropFirst(keyspace.leasePrefix.count))) }
            return nil
        }
    }

    let subscription: RedisSubscription<Expired>
    let connection: RedisConnection
    let script: LoadedScript
    let keyspace: RunKeyspace
    let counters: RunCounters
    let context: PipelineContext

    /// The channel that carries expired-key events of database `db`.
    public static func channel(database db: Int) -> String { "__keyevent@\(db)__:expired" }

    /// Subscribes before returning, so that no key generated after this call goes unheard.
    public static func start(endpoint: RedisEndpoint, connection: RedisConnection, context: PipelineContext) async throws -> ExpirationBridge {
        let keyspace = context.keyspace
        let subscription = try await RedisSubscription<Expired>.subscribe(
            to: channel(database: endpoint.database), endpoint: endpoint, name: subscriberName(keyspace),
            timeout: context.configuration.timeout, prepare: { NotificationSettings.reapply($0, timeoutMilliseconds: $1) }
        ) { key in Expired.parse(key, keyspace: keyspace) }
        return ExpirationBridge(subscription: subscription, connection: connection, script: context.scripts.publish,
                                keyspace: keyspace, counters: context.counters, context: context)
    }

    /// The client name of the run's subscriber connection (chaos finds it by this name).
    public static func subscriberName(_ keyspace: RunKeyspace) -> String { "expiry-bench:\(keyspace.runID):subscriber" }

    /// Publishes events until the subscription is stopped and its queue drained.
    public func run() async throws {
        while let events = await subscription.messages.take(upTo: 2000) {
            var indices: [Int] = []
            indices.reserveCapacity(events.count)
            var lapsed: [String] = []
            for event in events {
                switch event {
                case .key(let index): indices.append(index)
                case .lease(let name): lapsed.append(name)
                }
            }
            if !indices.isEmpty {
                let published = try await withRetries(giveUpAfter: context.configuration.timeout) { try await publish(indices) }
                counters.publishedByNotification.add(published, ordering: .relaxed)
            }
            if !lapsed.isEmpty {
                try await withRetries(giveUpAfter: context.configuration.timeout) {
                    try await LeaseKeeper.lapsed(lapsed, context: context, connection: connection)
                }
            }
        }
    }

    /// Publishes keys through the publish-once script, tagged with where they came from; returns how many
    /// were published (keys no longer in the due index are skipped).
    func publish(_ indices: [Int], source: String = "n") async throws -> Int {
        let reply = try await connection.evalsha(script, keys: [keyspace.dueIndex, keyspace.stream]) { command in
            command.append(source)
            for index in indices { command.append(index) }
        }
        return Int(reply.int ?? 0)
    }

    /// Stops listening; `run` returns once what was heard is published.
    public func stop() { subscription.stop() }

    /// How many times the subscriber lost its connection (events published meanwhile were lost).
    public var reconnects: Int { subscription.reconnectCount }
}
