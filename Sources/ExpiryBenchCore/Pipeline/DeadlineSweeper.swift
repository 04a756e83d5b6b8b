/// Publishes keys whose deadline passed more than `grace` ago, whether or not Redis has expired them and
/// notified us: keyspace notifications are fire-and-forget, and on a server full of long-TTL keys they come
/// tens of seconds late. Uses the due index, so it and the bridge never publish a key twice.
/// A run has one sweeper per shard.
public struct DeadlineSweeper: Sendable {
    let connection: RedisConnection
    let script: LoadedScript
    let keyspace: RunKeyspace
    let grace: String
    let interval: Duration
    let limit = 2000
    let counters: RunCounters
    let giveUpAfter: Duration
    let context: PipelineContext

    /// - Parameter shard: the shard to sweep; nil for the first (the only one of a single-shard run).
    public init(connection: RedisConnection, context: PipelineContext, shard: RunKeyspace? = nil) {
        self.connection = connection
        self.context = context
        self.script = context.scripts.sweep
        self.keyspace = shard ?? context.layout.shards[0]
        self.grace = String(context.configuration.grace.milliseconds)
        self.interval = context.configuration.sweepInterval
        self.counters = context.counters
        self.giveUpAfter = context.configuration.timeout
    }

    /// Sweeps every `interval` (at once again while a sweep fills its limit) until `shouldStop` says so.
    public func run(shouldStop: @Sendable () -> Bool) async throws {
        while !shouldStop() {
            let published = try await sweepOnce()
            if published < limit { try await Task.sleep(for: interval) }
        }
    }

    /// One sweep; returns how many keys it published.
    @discardableResult
    public func sweepOnce() async throws -> Int {
        let reply = try await withRetries(giveUpAfter: giveUpAfter) {
            try await connection.evalsha(script, keys: [keyspace.dueIndex, keyspace.stream]) { command in
                command.append(keyspace.dataPrefix)
                command.append(grace)
                command.append(limit)
            }
        }
        let published = Int(reply.int ?? 0)
        if published > 0 { counters.publishedBySweeper.add(published, ordering: .relaxed) }
        return published
    }
}
