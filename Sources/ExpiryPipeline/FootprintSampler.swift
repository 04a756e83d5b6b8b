import Synchronization
import RedisClient

/// The run's footprint on Redis's expiry: how many keys of the run carry a TTL while it goes.
///
/// Redis's expiry cycle samples the keys that carry a TTL and stops a pass once few of its sample have expired,
/// so every live key with a TTL (a lease, a probe, a record) slows the expiry of the keys the run measures. Every
/// `interval` one script per server reads, at one instant, how many keys carry a TTL (`INFO keyspace`, `expires=`)
/// and how many data keys wait in the due indexes. The run's own TTL keys are the first less the count once the
/// background keys are written less the second. It assumes nobody else adds or removes TTL keys on the server meanwhile (a sample that
/// comes out negative counts as 0). In a cluster the script runs shard by shard (its keys must share a slot), so
/// a node's shards are read a moment apart.
package final class FootprintSampler: Sendable {
    /// A shard, a connection that reaches its keys, and the server that holds them.
    package struct Shard: Sendable {
        package let keyspace: ShardKeyspace
        package let connection: RedisConnection
        package let node: String
        package init(keyspace: ShardKeyspace, connection: RedisConnection, node: String) {
            self.keyspace = keyspace
            self.connection = connection
            self.node = node
        }
    }

    let shards: [Shard]
    let script: LoadedScript
    let database: String
    /// One script call for all shards (a single server), or one per shard (a cluster).
    let together: Bool
    let interval: Duration
    private struct State {
        var footprint = Footprint()
        /// Keys with a TTL once the run's background keys are written: what a sample subtracts besides the data keys.
        var baseline = 0
    }
    private let state = Mutex(State())

    package init(shards: [Shard], script: LoadedScript, database: Int, cluster: Bool, interval: Duration = .milliseconds(100)) {
        self.shards = shards
        self.script = script
        self.database = String(database)
        self.together = !cluster
        self.interval = interval
    }

    /// Reads the servers' TTL keys before the run writes its data: the user's (`ttlKeysBefore`), less `own`, the
    /// run's keys with a TTL already there (its meta hash).
    package func readBefore(excluding own: Int = 0) async throws {
        let before = try await read().reduce(0) { $0 + $1.value.expires }
        state.withLock { $0.footprint.ttlKeysBefore = max(0, before - own) }
    }

    /// Reads them again once the run's `--background-keys` are written, as the baseline of the samples: neither
    /// the user's keys nor the background keys are the run's own footprint.
    package func start() async throws {
        let baseline = try await read().reduce(0) { $0 + $1.value.expires }
        state.withLock { $0.baseline = baseline }
    }

    /// Samples until cancelled; a failed sample is skipped.
    package func run() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { break }
            _ = try? await sampleOnce()
        }
    }

    /// One sample, folded into the peaks; returns the run's own TTL keys and the data keys waiting.
    @discardableResult
    package func sampleOnce() async throws -> (own: Int, data: Int) {
        let nodes = try await read()
        let total = nodes.values.reduce(0) { $0 + $1.expires }
        let data = nodes.values.reduce(0) { $0 + $1.due }
        return state.withLock { state in
            let own = max(0, total - state.baseline - data)
            state.footprint.ownTTLKeysPeak = max(state.footprint.ownTTLKeysPeak, own)
            state.footprint.dataKeysPeak = max(state.footprint.dataKeysPeak, data)
            state.footprint.samples += 1
            return (own, data)
        }
    }

    /// The peaks so far.
    package var footprint: Footprint { state.withLock { $0.footprint } }

    /// Per server: keys with a TTL in the run's database, and data keys in its shards' due indexes.
    func read() async throws -> [String: (expires: Int, due: Int)] {
        guard !shards.isEmpty else { return [:] }
        let calls = together ? [shards] : shards.map { [$0] }
        var nodes: [String: (expires: Int, due: Int)] = [:]
        for call in calls {
            let reply = try await call[0].connection.evalsha(script, keys: call.map(\.keyspace.dueIndex)) { $0.append(database) }
            guard let parts = reply.array, parts.count == 2, let expires = parts[0].int, let due = parts[1].int else {
                throw RedisError(.protocolViolation, "footprint script returned \(reply)")
            }
            let node = call[0].node
            nodes[node] = (expires: Int(expires), due: (nodes[node]?.due ?? 0) + Int(due))
        }
        return nodes
    }

    /// `expires=` of `db<database>` in an `INFO keyspace` reply; 0 when the database holds no key.
    package static func keysWithTTL(inKeyspaceInfo info: String, database: Int) -> Int {
        let prefix = "db\(database):"
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix(prefix) {
            for field in line.dropFirst(prefix.count).split(separator: ",") where field.hasPrefix("expires=") {
                return Int(field.dropFirst("expires=".count)) ?? 0
            }
        }
        return 0
    }
}

/// The run's footprint on the server's expiry, as sampled by `FootprintSampler`.
package struct Footprint: Sendable, Codable, Equatable {
    /// The most keys of the run's own (locks, leases, probes, bookkeeping) that carried a TTL at once.
    package var ownTTLKeysPeak = 0
    /// The most data keys waiting to expire and be published at once.
    package var dataKeysPeak = 0
    /// Keys with a TTL on the server before the run wrote any (the user's; never the run's --background-keys).
    package var ttlKeysBefore = 0
    /// Samples taken.
    package var samples = 0

    package init() {}
}
