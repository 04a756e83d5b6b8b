/// Keeps the lease of every live consumer of this process alive: every quarter of `leaseTTL`, one pipeline
/// renews each lease key (`SET ... PX`) and its deadline in the run's lease index. A consumer that dies stops
/// being renewed; when its lease lapses, the bridge (the lease key's expired event) or the sweeper (the lease
/// index) puts it on the orphan board and another consumer takes its entries over at once.
public struct LeaseKeeper: Sendable {
    let connection: RedisConnection
    let context: PipelineContext
    let roster: ConsumerRoster

    public init(connection: RedisConnection, context: PipelineContext, roster: ConsumerRoster) {
        self.connection = connection
        self.context = context
        self.roster = roster
    }

    /// Renews leases until cancelled or `shouldStop`. Failures are retried at the next beat.
    public func run(shouldStop: @Sendable () -> Bool) async {
        let ttl = context.configuration.leaseTTL
        while !shouldStop(), !Task.isCancelled {
            _ = try? await renew()
            do { try await Task.sleep(for: ttl / 4) } catch { return }
        }
    }

    /// One heartbeat for every live consumer.
    public func renew() async throws {
        let ttl = context.configuration.leaseTTL
        let alive = roster.alive
        guard !alive.isEmpty else { return }
        let deadline = String(context.serverNowMilliseconds + Int64(ttl.milliseconds))
        var zadd = ["ZADD", context.keyspace.leases]
        var commands: [RedisCommand] = []
        for consumer in alive {
            commands.append(RedisCommand("SET", context.keyspace.lease(consumer.name), "1", "PX", String(ttl.milliseconds)))
            zadd += [deadline, consumer.name]
        }
        commands.append(RedisCommand(zadd))
        _ = try await connection.pipeline(commands)
    }

    /// Puts `names` on the orphan board if this call is the one that removed them from the lease index
    /// (so the bridge and the sweeper never hand out the same lapse twice).
    static func lapsed(_ names: [String], context: PipelineContext, connection: RedisConnection) async throws {
        guard !names.isEmpty else { return }
        let replies = try await connection.pipeline(names.map { RedisCommand("ZREM", context.keyspace.leases, $0) })
        for (name, reply) in zip(names, replies) where reply.int == 1 {
            context.counters.leaseExpiries.add(1, ordering: .relaxed)
            context.orphans.add(name)
        }
    }
}
