import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// A private Redis Cluster: `nodes.count` primaries, no replicas, each a `redis-server` on a free loopback port in a
/// temporary directory of its own.
struct LocalCluster: Sendable {
    let nodes: [EmbeddedRedis]

    /// The first node: any node would do to discover the rest.
    var seed: RedisEndpoint { nodes[0].endpoint }

    /// The seed as a URL, `redis://127.0.0.1:PORT` (`rediss://` for a TLS cluster).
    var url: String { (seed.tls == nil ? "redis" : "rediss") + "://127.0.0.1:\(nodes[0].port)" }

    /// The node listening where `endpoint` points, if it is one of ours.
    func node(at endpoint: RedisEndpoint) -> EmbeddedRedis? {
        nodes.first { $0.endpoint.address == endpoint.address }
    }
}

/// The options that make a `redis-server` a cluster node with no persistence; its cluster bus listens on
/// `busPort` (not port + 10000, which is beyond 65535 for ports the kernel hands out), or on port + 10000 where
/// the server has no `cluster-port` (before Redis 7.0).
private func clusterNodeArguments(busPort: Int?) -> [String] {
    ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
     "--appendonly", "no", "--save", ""] + (busPort.map { ["--cluster-port", String($0)] } ?? [])
}

/// Whether the server binary the tests start knows `cluster-port` (Redis 7.0 and later, every Valkey).
private func serverHasClusterPort() async throws -> Bool {
    let binary = try #require(EmbeddedRedis.serverPath())
    let version = try await runProgram(URL(fileURLWithPath: binary), ["--version"], limit: .seconds(10)).stdout
    guard let range = version.range(of: #"v=(\d+)\."#, options: .regularExpression),
          let major = Int(version[range].dropFirst(2).dropLast()) else { return true }
    return major >= 7
}

/// Starts a cluster of `primaries` nodes (`redis-cli --cluster create ... --cluster-replicas 0`), waits until every
/// node reports `cluster_state:ok` with all 16384 slots assigned and every node known, runs `body` with it, and
/// always stops every node afterwards, whether `body` returned or threw.
/// With `tls`, every node listens on TLS only and the cluster bus speaks TLS too (`tls-cluster yes`).
/// With `replicasEach`, every primary gets that many replicas (`nodes` then lists the primaries first).
func withRedisCluster<T: Sendable>(primaries: Int = 3, replicasEach: Int = 0, tls: TestCertificates? = nil,
                                   _ body: (LocalCluster) async throws -> T) async throws -> T {
    var nodes: [EmbeddedRedis] = []
    let result: Result<T, Error>
    do {
        for _ in 0..<primaries * (1 + replicasEach) { nodes.append(try await startClusterNode(tls: tls)) }
        let cluster = LocalCluster(nodes: nodes)
        try await createCluster(cluster, replicasEach: replicasEach, tls: tls)
        result = .success(try await body(cluster))
    } catch {
        result = .failure(error)
    }
    for node in nodes { await stopOffThePool(node) }
    return try result.get()
}

/// One cluster-enabled `redis-server`; tried again with another bus port if that one was taken meanwhile.
private func startClusterNode(tls: TestCertificates?) async throws -> EmbeddedRedis {
    var lastError: Error = RedisError(.io, "no cluster node started")
    let separateBus = try await serverHasClusterPort()
    for _ in 0..<5 {
        do {
            if separateBus {
                let tlsArguments = tls.map { $0.serverArguments() + ["--tls-cluster", "yes", "--tls-replication", "yes"] } ?? []
                return try await EmbeddedRedis.start(extraArguments: clusterNodeArguments(busPort: try EmbeddedRedis.freePort()) + tlsArguments,
                                                     tls: tls?.clientSettings())
            }
            // The bus is on port + 10000: a port low enough for that, at random (taken ones fail and are retried).
            return try await EmbeddedRedis.start(extraArguments: clusterNodeArguments(busPort: nil), port: Int.random(in: 20_000...55_000))
        } catch {
            lastError = error
        }
    }
    throw lastError
}

/// `redis-cli --cluster create` over the nodes, then waits until the cluster is whole, as every node sees it.
private func createCluster(_ cluster: LocalCluster, replicasEach: Int, tls: TestCertificates?) async throws {
    let cli = try #require(redisCLIPath(), "redis-cli is not on PATH: install redis-tools")
    let addresses = cluster.nodes.map { "127.0.0.1:\($0.port)" }
    let tlsArguments = tls.map { ["--tls", "--cacert", $0.ca] } ?? []
    let created = try await runProgram(URL(fileURLWithPath: cli),
                                       tlsArguments + ["--cluster", "create"] + addresses + ["--cluster-replicas", String(replicasEach), "--cluster-yes"],
                                       limit: .seconds(30))
    guard created.status == 0 else {
        throw RedisError(.server, "redis-cli --cluster create failed (\(created.status)): \(created.combined.suffix(600))")
    }
    for node in cluster.nodes {
        try await waitUntilClusterIsWhole(node, nodes: cluster.nodes.count)
    }
    if replicasEach > 0 {
        for node in cluster.nodes { try await waitUntilReplicasAreInSync(node, replicas: replicasEach) }
    }
}

/// Waits (at most 30 s: a first copy starts after `repl-diskless-sync-delay`, 5 s) until a primary has `replicas`
/// replicas in sync, or a replica is itself in sync with its primary.
private func waitUntilReplicasAreInSync(_ node: EmbeddedRedis, replicas: Int) async throws {
    let connection = try await connect(node, name: "itest:cluster-wait")
    defer { connection.close() }
    var info = ""
    for _ in 0..<300 {
        info = try await connection.send("INFO", "replication").string ?? ""
        if ServerFacts.field("role", in: info) == "slave" ? ServerFacts.field("master_link_status", in: info) == "up"
            : ServerFacts.replicasInSync(in: info) >= replicas {
            return
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw RedisError(.timeout, "the replicas of the cluster node on port \(node.port) are not in sync after 30 s: \(info)")
}

/// Waits (at most 10 s) until `node` reports `cluster_state:ok`, 16384 slots assigned and `nodes` nodes known.
func waitUntilClusterIsWhole(_ node: EmbeddedRedis, nodes: Int) async throws {
    let connection = try await connect(node, name: "itest:cluster-wait")
    defer { connection.close() }
    var info: [String: String] = [:]
    for _ in 0..<200 {
        info = try await clusterInfo(connection)
        if info["cluster_state"] == "ok", info["cluster_slots_assigned"] == String(HashSlot.count),
           info["cluster_known_nodes"] == String(nodes) {
            return
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw RedisError(.timeout, "the cluster node on port \(node.port) is not whole after 10 s: \(info)")
}

/// `CLUSTER INFO` as a dictionary of its `field:value` lines.
func clusterInfo(_ connection: RedisConnection) async throws -> [String: String] {
    let text = try await connection.send("CLUSTER", "INFO").string ?? ""
    var fields: [String: String] = [:]
    for line in text.split(whereSeparator: \.isNewline) {
        let parts = line.split(separator: ":", maxSplits: 1).map(String.init)
        if parts.count == 2 { fields[parts[0]] = parts[1] }
    }
    return fields
}

/// The node id of the server `connection` talks to (`CLUSTER MYID`).
func clusterNodeID(_ connection: RedisConnection) async throws -> String {
    try #require(try await connection.send("CLUSTER", "MYID").string)
}

/// The path of `redis-cli`, if it is on PATH.
func redisCLIPath() -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for directory in path.split(separator: ":") + ["/usr/bin"] {
        let candidate = "\(directory)/redis-cli"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}
