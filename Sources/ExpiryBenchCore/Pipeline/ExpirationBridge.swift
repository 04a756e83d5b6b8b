/// Turns the run's expired-key events into stream entries.
///
/// Its subscription (a connection of its own) hears every expired key of the run's database and keeps only
/// the run's data keys; the bridge publishes them in batches with the publish-once script, so a key already
/// published (by the sweeper, or by an event heard twice) is never published again.
public struct ExpirationBridge: Sendable {
    let subscription: RedisSubscription<Int>
    let connection: RedisConnection
    let script: LoadedScript
    let keyspace: RunKeyspace
    let counters: RunCounters

    /// The channel that carries expired-key events of database `db`.
    public static func channel(database db: Int) -> String { "__keyevent@\(db)__:expired" }

    /// Subscribes before returning, so that no key generated after this call goes unheard.
    public static func start(endpoint: RedisEndpoint, connection: RedisConnection, script: LoadedScript,
                             keyspace: RunKeyspace, counters: RunCounters, timeout: Duration) async throws -> ExpirationBridge {
        let subscription = try await RedisSubscription<Int>.subscribe(
            to: channel(database: endpoint.database), endpoint: endpoint, name: "expiry-bench:\(keyspace.runID):subscriber", timeout: timeout
        ) { key in keyspace.index(ofDataKey: key) }
        return ExpirationBridge(subscription: subscription, connection: connection, script: script, keyspace: keyspace, counters: counters)
    }

    /// Publishes events until the subscription is stopped and its queue drained.
    public func run() async throws {
        while let indices = await subscription.messages.take(upTo: 2000) {
            let published = try await publish(indices)
            counters.publishedByNotification.add(published, ordering: .relaxed)
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
