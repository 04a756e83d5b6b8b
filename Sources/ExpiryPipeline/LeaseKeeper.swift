import RedisClient

/// Keeps the lease of every live consumer of this process alive, and finds consumers of any process whose lease
/// lapsed.
///
/// Every quarter of `leaseTTL`, one script call renews each lease key (`SET ... PX`) and its deadline in the run's
/// lease index, while the run exists. A consumer that dies stops being renewed; when its lease lapses, the bridge
/// (the lease key's expired event) or a lease keeper (the lease index, read at every beat) puts it on the orphan
/// board, and a consumer of the same shard takes its entries over at once.
package struct LeaseKeeper: Sendable {
    /// A lease's name: the consumer and the shard it reads (its pending entries are in that shard's stream).
    package struct Member: Sendable, Equatable, CustomStringConvertible {
        package let consumer: String
        package let shard: Int

        package init(consumer: String, shard: Int) {
            self.consumer = consumer
            self.shard = shard
        }

        /// Parses `consumer@shard`.
        package init?(_ text: String) {
            guard let at = text.lastIndex(of: "@"), let shard = Int(text[text.index(after: at)...]), shard >= 0 else { return nil }
            self.init(consumer: String(text[..<at]), shard: shard)
        }

        package var description: String { "\(consumer)@\(shard)" }
    }

    let connection: RedisConnection
    let context: PipelineContext
    let roster: ConsumerRoster

    package init(connection: RedisConnection, context: PipelineContext, roster: ConsumerRoster) {
        self.connection = connection
        self.context = context
        self.roster = roster
    }

    /// Renews leases and looks for lapsed ones until cancelled or `shouldStop`. Failures are retried at the next beat.
    package func run(shouldStop: @Sendable () -> Bool) async {
        let ttl = context.settings.consumer.leaseTTL
        while !shouldStop(), !Task.isCancelled {
            _ = try? await renew()
            _ = try? await findLapsed()
            do { try await Task.sleep(for: ttl / 4) } catch { return }
        }
    }

    /// One heartbeat for every live consumer: one call of the lease script, which writes nothing once the run's
    /// meta hash is gone (a process still beating after its driver removed the run must not bring the run's keys
    /// back); throws its `GONE` error then.
    package func renew() async throws {
        let ttl = context.settings.consumer.leaseTTL
        let alive = roster.alive
        guard !alive.isEmpty else { return }
        let members = alive.map { Member(consumer: $0.name, shard: $0.shard).description }
        let keyspace = context.keyspace
        _ = try await connection.evalsha(context.scripts.renewLeases, keys: [keyspace.meta, keyspace.leases] + members.map(keyspace.lease)) { command in
            command.append(ttl.milliseconds)
            command.append(String(context.serverNowMilliseconds + Int64(ttl.milliseconds)))
            command.append(RunKeyspace.safetyTTL.milliseconds)
            for member in members { command.append(member) }
        }
    }

    /// Consumers whose lease deadline passed, of any process: on the orphan board (for when their lease key's
    /// expired event is late, or heard by a process without consumers).
    func findLapsed() async throws {
        guard context.settings.consumers > 0 else { return }
        let now = String(context.serverNowMilliseconds)
        let reply = try await connection.send(RedisCommand(["ZRANGEBYSCORE", context.keyspace.leases, "-inf", now, "LIMIT", "0", "100"]))
        try await Self.lapsed((reply.array ?? []).compactMap { $0.string.flatMap(Member.init) }, context: context, connection: connection)
    }

    /// Puts `members` on the orphan board if this call is the one that removed them from the lease index (so no
    /// two paths, and no two processes, hand out the same lapse). A process without consumers leaves them to others.
    static func lapsed(_ members: [Member], context: PipelineContext, connection: RedisConnection) async throws {
        // Only lapses this process can act on: a consumer of the same shard takes the entries over.
        let shards = Set(members.isEmpty ? [] : (0..<context.settings.consumers).map { context.layout.shard(forConsumer: $0, after: context.consumerOffset) })
        let members = members.filter { shards.contains($0.shard) }
        guard !members.isEmpty else { return }
        let replies = try await connection.pipeline(members.map { RedisCommand("ZREM", context.keyspace.leases, $0.description) })
        for (member, reply) in zip(members, replies) where reply.int == 1 {
            context.counters.add(\.leaseExpiries, 1)
            context.orphans.add(member.consumer, shard: member.shard)
        }
    }
}
