import Synchronization
import RedisClient

/// Watches one shard and keeps its stream short: every `interval` it removes the entries that every consumer is
/// done with (older than both the oldest pending entry and the group's read position), and remembers the longest
/// the stream was before trimming, so the report shows the true peak. It publishes what it reads to the shard's
/// gauge: the group's lag, the keys every process has finished (the shard's tally), and, every tenth tick,
/// whether some entry has been pending longer than `reclaimIdle` (so consumers reclaim it).
package final class StreamTrimmer: Sendable {
    let connection: RedisConnection
    let keyspace: ShardKeyspace
    let interval: Duration
    private let state = Mutex((length: 0, maxLength: 0, pending: 0))

    let gauges: ShardGauges?
    let reclaimIdle: Duration
    let expireAfter: Duration?

    /// - Parameters:
    ///   - gauges: where to publish what it reads, for consumers and the driver.
    ///   - expireAfter: when set, the shard's bookkeeping keys get this TTL, renewed every 10 s, so that a run killed
    ///     with SIGKILL (no cleanup) does not leave them on the server forever.
    package init(connection: RedisConnection, keyspace: ShardKeyspace, interval: Duration = .milliseconds(100), gauges: ShardGauges? = nil,
                reclaimIdle: Duration = .seconds(1), expireAfter: Duration? = nil) {
        self.connection = connection
        self.gauges = gauges
        self.reclaimIdle = reclaimIdle
        self.expireAfter = expireAfter
        self.keyspace = keyspace
        self.interval = interval
    }

    /// The stream's length at the last sample, before trimming.
    package var length: Int { state.withLock { $0.length } }
    /// The longest the stream was at any sample.
    package var maxLength: Int { state.withLock { $0.maxLength } }
    /// Entries delivered and not yet acknowledged, at the last sample.
    package var pending: Int { state.withLock { $0.pending } }

    /// Trims until cancelled. Failures are skipped: trimming is housekeeping, the next tick tries again.
    package func run() async {
        var tick = 0
        while !Task.isCancelled {
            if let expireAfter, tick % 100 == 0 { try? await expireBookkeeping(after: expireAfter) }
            tick += 1
            do { try await Task.sleep(for: interval) } catch { break }
            _ = try? await trimOnce(checkIdle: tick % 10 == 0)
        }
    }

    /// Gives the shard's bookkeeping keys a TTL (the keys that expire, locks and commit records have their own).
    func expireBookkeeping(after ttl: Duration) async throws {
        let milliseconds = String(ttl.milliseconds)
        _ = try await connection.pipeline(keyspace.shardBookkeepingKeys.map { RedisCommand("PEXPIRE", $0, milliseconds) })
    }

    /// One sample and trim; returns the ID trimmed up to, if any.
    @discardableResult
    package func trimOnce(checkIdle: Bool = false) async throws -> String? {
        var commands = [
            RedisCommand("XPENDING", keyspace.stream, keyspace.group),
            RedisCommand("XINFO", "GROUPS", keyspace.stream),
            RedisCommand("XLEN", keyspace.stream),
            RedisCommand("HGET", keyspace.tally, "done"),
        ]
        if checkIdle {
            commands.append(RedisCommand(["XPENDING", keyspace.stream, keyspace.group, "IDLE", String(reclaimIdle.milliseconds), "-", "+", "1"]))
        }
        let replies = try await connection.pipeline(commands)
        let summary = replies[0].array ?? []
        let pending = Int(summary.first?.int ?? 0)
        let length = Int(replies[2].int ?? 0)
        state.withLock {
            $0.length = length
            $0.pending = pending
            $0.maxLength = max($0.maxLength, length)
        }
        let firstPending = pending > 0 && summary.count > 1 ? summary[1].string : nil
        let group = Self.groupFields(keyspace.group, in: replies[1])
        let lastDelivered = group["last-delivered-id"]
        let lag = group["lag"].flatMap { Int($0) } ?? -1
        let finished = Int(replies[3].string ?? "") ?? 0
        let idle = checkIdle ? !(replies[4].array ?? []).isEmpty : nil
        gauges?.update(keyspace.shardIndex) { gauge in
            gauge.sampled(undelivered: lag)
            gauge.finished = max(gauge.finished, finished)
            if let idle { gauge.idle = idle }
        }
        // Entries older than both are acknowledged: nobody will read them again.
        let bounds = [firstPending, lastDelivered].compactMap { $0 }.compactMap(StreamID.init)
        guard let minimum = bounds.min(), minimum != StreamID.zero else { return nil }
        try await connection.send(RedisCommand("XTRIM", keyspace.stream, "MINID", minimum.description))
        return minimum.description
    }

    /// The fields of `group` in an XINFO GROUPS reply, as text.
    package static func groupFields(_ group: String, in reply: RESPValue) -> [String: String] {
        for entry in reply.array ?? [] {
            let fields = entry.fieldMap
            if fields["name"] == group { return fields }
        }
        return [:]
    }
}

/// A stream entry id, `ms-seq`, ordered as Redis orders them.
struct StreamID: Comparable, CustomStringConvertible {
    let milliseconds: UInt64
    let sequence: UInt64
    static let zero = StreamID(milliseconds: 0, sequence: 0)

    init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    init?(_ text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let ms = UInt64(parts[0]), let seq = UInt64(parts[1]) else { return nil }
        self.init(milliseconds: ms, sequence: seq)
    }

    var description: String { "\(milliseconds)-\(sequence)" }

    static func < (a: StreamID, b: StreamID) -> Bool {
        (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
    }
}
