import Synchronization
import ExpiryPipeline
import RedisClient

/// Where a run's connections go: one server, or the primaries of a Redis Cluster.
///
/// In a cluster every connection is homed on the slot of the keys it works on (a shard's, or the run-level
/// keys'), follows MOVED/ASK, and after a failure finds the slot's current owner (`ClusterRoute`).
struct RunServers: Sendable {
    /// The server, or the cluster node the run was pointed at.
    let endpoint: RedisEndpoint
    let cluster: ClusterTopology?

    /// Every primary (the server itself when not a cluster), in a stable order.
    var primaries: [RedisEndpoint] { cluster?.primaries ?? [endpoint] }

    /// Shards a run gets unless `--shards` says otherwise: one on a single server, three per primary in a cluster
    /// (so the consumers of a primary spread over a few streams).
    var defaultShardCount: Int { cluster == nil ? 1 : 3 * primaries.count }

    /// The route of a connection working on `key`'s slot; nil on a single server.
    func route(for key: String) -> ClusterRoute? {
        cluster.map { ClusterRoute(topology: $0, slot: HashSlot.of(key)) }
    }

    /// The run's layout: `count` shards, spread evenly over the primaries.
    func layout(run: RunKeyspace, shards count: Int) -> RunLayout {
        guard let cluster else { return RunLayout(run: run, tags: RunLayout.singleServerTags(runID: run.runID, count: count)) }
        let primaries = cluster.primaries
        let tags = RunLayout.clusterTags(runID: run.runID, count: count, primaries: primaries.count) { tag in
            let owner = cluster.owner(ofSlot: HashSlot.of("{\(tag)}"))
            return primaries.firstIndex(of: owner) ?? 0
        }
        return RunLayout(run: run, tags: tags)
    }

    /// The key of the record of runs sharing `notify-keyspace-events` on `primary` (`NotificationShare`).
    func notificationRecordKey(on primary: RedisEndpoint) -> String {
        guard let cluster else { return NotificationShare.standaloneKey }
        return NotificationShare.clusterKey(for: primary) { cluster.owner(ofSlot: $0) }
    }

    /// The primary a shard's slot is on, for the report.
    func node(of shard: ShardKeyspace) -> String {
        guard let cluster else { return endpoint.addressDescription }
        return cluster.owner(ofSlot: HashSlot.of(shard.stream)).addressDescription
    }

    /// Where the bridge listens: the server, or each primary, homed on a slot that primary owns.
    func subscriptionSources() -> [ExpirationBridge.Source] {
        guard let cluster else { return [ExpirationBridge.Source(endpoint: endpoint)] }
        return cluster.primaries.map { primary in
            ExpirationBridge.Source(endpoint: primary, route: cluster.firstSlot(ownedBy: primary).map { ClusterRoute(topology: cluster, slot: $0) })
        }
    }

    /// One plain connection to each primary, for commands that concern a node rather than a key (SCAN, CONFIG, INFO).
    func connectToPrimaries(name: String, timeout: Duration) async throws -> [RedisConnection] {
        var connections: [RedisConnection] = []
        do {
            for primary in primaries {
                connections.append(try await RedisConnection.connect(to: primary, name: name, timeout: timeout))
            }
        } catch {
            for connection in connections { connection.close() }
            throw error
        }
        return connections
    }

    /// Finds out whether `control`'s server is a cluster node and, if so, the cluster's primaries.
    static func discover(endpoint: RedisEndpoint, control: RedisConnection, clusterEnabled: Bool) async throws -> RunServers {
        guard clusterEnabled else { return RunServers(endpoint: endpoint, cluster: nil) }
        let info = try await control.send(RedisCommand("CLUSTER", "INFO")).string ?? ""
        let state = ServerFacts.field("cluster_state", in: info) ?? "unknown"
        guard state == "ok" else {
            throw RunError(.configuration, "the Redis Cluster node at \(endpoint.addressDescription) reports cluster_state:\(state): not every slot is served. Finish the cluster's setup (redis-cli --cluster create, or --cluster fix) and run again.")
        }
        return RunServers(endpoint: endpoint, cluster: try await ClusterTopology.discover(using: control))
    }
}

/// The connections of a run, opened by name and closed together.
final class ConnectionSet: Sendable {
    let servers: RunServers
    let runID: String
    let timeout: Duration
    /// `--wait-replicas`, for every connection of the set.
    let acknowledgement: ReplicaAcknowledgement?
    private let opened = Mutex<[RedisConnection]>([])

    init(servers: RunServers, runID: String, timeout: Duration, acknowledgement: ReplicaAcknowledgement?) {
        self.servers = servers
        self.runID = runID
        self.timeout = timeout
        self.acknowledgement = acknowledgement
    }

    /// Opens a connection named after `role`, homed on the slot of `key` in a cluster. A connection dropped while
    /// it is being opened (its handshake included: AUTH, SELECT, CLIENT SETNAME) is opened again, for up to
    /// `timeout`: a replacement consumer started while someone kills connections must not end the run.
    /// - Parameters:
    ///   - acknowledged: false for a connection whose writes wait for no replica (`--wait-replicas`).
    ///   - patience: how long to keep trying; `timeout` when nil.
    func open(_ role: String, for key: String, acknowledged: Bool = true, patience: Duration? = nil) async throws -> RedisConnection {
        let limit = min(patience ?? timeout, timeout)
        let connection = try await withRetries(giveUpAfter: limit) {
            try await RedisConnection.connect(to: servers.endpoint, name: "expiry-bench:\(runID):\(role)", timeout: max(limit, .seconds(1)),
                                              route: servers.route(for: key), acknowledgement: acknowledged ? acknowledgement : nil)
        }
        opened.withLock { $0.append(connection) }
        return connection
    }

    /// A consumer on a connection of its own, homed on the slot of the shard it reads.
    func consumer(_ stats: ConsumerStats, context: PipelineContext) async throws -> StreamConsumer {
        StreamConsumer(connection: try await open(stats.name, for: context.layout.shards[stats.shard].stream), context: context, stats: stats)
    }

    /// One connection per shard of `layout`, by shard index.
    func openPerShard(_ role: String, layout: RunLayout, acknowledged: Bool = true, patience: Duration? = nil) async throws -> [RedisConnection] {
        var connections: [RedisConnection] = []
        for shard in layout.shards {
            connections.append(try await open(layout.shards.count == 1 ? role : "\(role)-\(shard.shardIndex)", for: shard.stream,
                                              acknowledged: acknowledged, patience: patience))
        }
        return connections
    }

    /// Round trips that enough replicas did not confirm in time (`--wait-replicas`), each tried again.
    var unconfirmed: Int { opened.withLock { $0.reduce(0) { $0 + $1.unconfirmedCount } } }

    /// Reconnections made by the run's connections so far.
    var reconnects: Int { opened.withLock { $0.reduce(0) { $0 + $1.reconnectCount } } }

    func closeAll() {
        for connection in opened.withLock({ $0 }) { connection.close() }
    }
}
