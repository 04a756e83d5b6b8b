import RedisClient

/// Where a consumer's entries come from, on the consumer's own connection: a dead consumer's pending entries
/// (its lease lapsed: XPENDING + XCLAIM), entries idle past `reclaimIdle` (XAUTOCLAIM), and new entries
/// (XREADGROUP).
struct ConsumerIntake: Sendable {
    let connection: RedisConnection
    let context: PipelineContext
    let stats: ConsumerStats
    let keyspace: ShardKeyspace
    let batch: Int
    let reclaimIdle: Duration
    /// How long a read waits for new entries when the consumer has none.
    let block: Duration = .milliseconds(100)

    var counters: RunCounters { context.counters }

    /// The next batch, at most `batch` entries: what was `carried` over first, then a dead consumer's entries, idle
    /// entries, and new ones (up to `count`, waiting for them only when there is nothing else). What does not fit
    /// is carried over to the next batch.
    func next(carried: inout [StreamEntry], count: Int, lastReclaim: inout ContinuousClock.Instant) async throws -> [StreamEntry] {
        var entries = carried
        carried = []
        // Recovery comes before new entries, so a dead consumer's keys are not left waiting behind a backlog. A
        // lease can lapse while its consumer lives (a late heartbeat on a loaded machine): a consumer never takes
        // itself over, and its renewed lease puts it back.
        if entries.count < batch, let orphan = context.orphans.take(shard: stats.shard), orphan != stats.name {
            entries += try await takeOver(orphan)
        }
        // Reclaiming scans the group's pending entries: only when the reporter has seen entries idle past
        // `reclaimIdle`, and at most once per `reclaimIdle` per consumer.
        if entries.count < batch, context.gauges[stats.shard].idle, ContinuousClock.now - lastReclaim > reclaimIdle {
            lastReclaim = .now
            entries += try await reclaim()
        }
        entries += try await read(upTo: count - entries.count, wait: entries.isEmpty)
        if entries.isEmpty { return [] }
        entries = Self.unique(entries)
        if entries.count > batch {
            carried = Array(entries[batch...])
            entries = Array(entries.prefix(batch))
        }
        return entries
    }

    /// The entries without repeats of an id (one entry can come both from a read and from a take-over).
    private static func unique(_ entries: [StreamEntry]) -> [StreamEntry] {
        var seen = Set<String>()
        return entries.filter { seen.insert($0.id).inserted }
    }

    /// New entries for this consumer: blocks up to `block` for them when `wait`, else takes what is there.
    private func read(upTo count: Int, wait: Bool) async throws -> [StreamEntry] {
        guard count > 0 else { return [] }
        var words = ["XREADGROUP", "GROUP", keyspace.group, stats.name, "COUNT", String(count)]
        if wait { words += ["BLOCK", String(block.milliseconds)] }
        words += ["STREAMS", keyspace.stream, ">"]
        let reply = try await connection.pipeline([RedisCommand(words)], extraWait: wait ? block : .zero)[0]
        let entries = StreamEntry.fromReadGroup(try reply.unwrapped(for: "XREADGROUP"))
        if !entries.isEmpty { context.gauges.update(stats.shard) { $0.delivered += entries.count } }
        return entries
    }

    /// Takes over entries idle longer than `reclaimIdle` from any consumer of the group.
    private func reclaim() async throws -> [StreamEntry] {
        let reply = try await connection.send(RedisCommand([
            "XAUTOCLAIM", keyspace.stream, keyspace.group, stats.name, String(reclaimIdle.milliseconds), "0-0", "COUNT", String(batch),
        ]))
        let entries = StreamEntry.fromAutoClaim(reply).entries
        counters.add(\.reclaimed, entries.count)
        return entries
    }

    /// Takes over every pending entry of a consumer whose lease lapsed, at once (no idle time to wait for).
    private func takeOver(_ orphan: String) async throws -> [StreamEntry] {
        let pending = try await connection.send(RedisCommand(["XPENDING", keyspace.stream, keyspace.group, "-", "+", String(batch), orphan]))
        let ids = (pending.array ?? []).compactMap { $0.array?.first?.string }
        if ids.isEmpty {
            context.recoveries.recovered(orphan)
            return []
        }
        let claimed = try await connection.send(RedisCommand(["XCLAIM", keyspace.stream, keyspace.group, stats.name, "0"] + ids))
        let entries = (claimed.array ?? []).compactMap(StreamEntry.init)
        counters.add(\.reclaimed, entries.count)
        if ids.count == batch {
            context.orphans.add(orphan, shard: stats.shard)  // more than one batch: the next free consumer takes the rest
        } else {
            context.recoveries.recovered(orphan)
        }
        return entries
    }
}
