/// Publishes keys whose deadline passed more than `grace` ago, whether or not Redis has expired them and
/// notified us: keyspace notifications are fire-and-forget, and on a server full of long-TTL keys they come
/// tens of seconds late. Uses the due index, so it and the bridge never publish a key twice.
/// It also finds consumers whose lease lapsed (the lease index), for when their lease key's event is late too.
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

    public init(connection: RedisConnection, context: PipelineContext) {
        self.connection = connection
        self.context = context
        self.script = context.scripts.sweep
        self.keyspace = context.keyspace
        self.grace = String(context.configuration.grace.milliseconds)
        self.interval = context.configuration.sweepInterval
        self.counters = context.counters
        self.giveUpAfter = context.configuration.timeout
    }

    /// Sweeps every `interval` (at once again while a sweep fills its limit) until `shouldStop` says so;
    /// checks the leases every tenth round.
    public func run(shouldStop: @Sendable () -> Bool) async throws {
        var round = 0
        while !shouldStop() {
            let published = try await sweepOnce()
            round += 1
            if round % 10 == 0 { try await findLapsedLeases() }
            if published < limit { try await Task.sleep(for: interval) }
        }
    }

    /// Consumers whose lease deadline passed: on the orphan board.
    func findLapsedLeases() async throws {
        let now = String(context.serverNowMilliseconds)
        let reply = try await withRetries(giveUpAfter: giveUpAfter) {
            try await connection.send(RedisCommand(["ZRANGEBYSCORE", keyspace.leases, "-inf", now, "LIMIT", "0", "100"]))
        }
        try await LeaseKeeper.lapsed(reply.array?.compactMap(\.string) ?? [], context: context, connection: connection)
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
