import Synchronization
import ExpiryPipeline
import RedisClient

/// `--chaos failover`: asks for one failover at a random moment of the run, once a random share (20 to 50 %) of
/// the keys is generated: of the sentinels (`SENTINEL FAILOVER <name>`, to each in turn until one answers), or in
/// a cluster of a replica of a primary drawn at random (`CLUSTER FAILOVER`). The run then has to follow it;
/// `FailoverWatch` reports what it cost.
final class FailoverChaos: Sendable {
    /// Where it was asked, when (ms since the run's start) and what the server answered.
    struct Asked: Sendable {
        var atMs: Double
        var node: String
        var answer: String
    }

    private let source: FailoverSource
    /// The run's endpoint: the credentials and TLS settings of every node asked.
    private let endpoint: RedisEndpoint
    private let counters: RunCounters
    private let keys: Int
    private let timeout: Duration
    private let runID: String
    private let result = Mutex<Asked?>(nil)

    init(source: FailoverSource, endpoint: RedisEndpoint, counters: RunCounters, keys: Int, timeout: Duration, runID: String) {
        self.source = source
        self.endpoint = endpoint
        self.counters = counters
        self.keys = keys
        self.timeout = timeout
        self.runID = runID
    }

    /// Refuses `--chaos failover` where nobody could do it: a server named directly (nothing would follow the
    /// failover), a Sentinel-managed primary without a replica, a cluster whose primaries have none.
    /// - Parameters:
    ///   - replicas: the replicas of a single primary (INFO replication).
    ///   - nodes: a connection to each primary of a cluster.
    static func check(_ servers: RunServers, replicas: Int, nodes: [RedisConnection]) async throws {
        switch FailoverSource(servers) {
        case nil:
            throw RunError(.usage, "--chaos failover asks the sentinels, or a cluster's replica, for a failover: \(servers.endpoint.addressDescription) is a server named directly, which nothing would fail over to. Reach it through its sentinels (redis-sentinel://host:26379,...#name), or leave failover out of --chaos.")
        case .sentinel(let group):
            if replicas == 0 { throw RunError(.configuration, "--chaos failover: the primary '\(group.master)' has no replica to promote. Give it one, or leave failover out of --chaos.") }
        case .cluster:
            for node in nodes {
                let info = try await node.send(RedisCommand("INFO", "replication")).string ?? ""
                if Int(ServerFacts.field("connected_slaves", in: info) ?? "") ?? 0 > 0 { return }
            }
            throw RunError(.configuration, "--chaos failover: no primary of the cluster at \(servers.endpoint.addressDescription) has a replica to promote. Give them replicas (redis-cli --cluster create ... --cluster-replicas 1), or leave failover out of --chaos.")
        }
    }

    /// What was asked; nil until it was.
    var asked: Asked? { result.withLock { $0 } }

    /// Waits for the moment drawn (or the run's stop), then asks once.
    func run(start: ContinuousClock.Instant, shouldStop: @Sendable () -> Bool) async {
        let due = max(1, Int(Double(keys) * Double.random(in: 0.2...0.5)))
        while !shouldStop() {
            if counters[\.generated] >= due {
                await ask(start: start)
                return
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func ask(start: ContinuousClock.Instant) async {
        let at = (ContinuousClock.now - start).seconds * 1000
        let (node, answer) = await request()
        log.info("chaos: failover asked of \(node): \(answer)")
        result.withLock { $0 = Asked(atMs: at.rounded(), node: node, answer: answer) }
        if answer != "OK" {
            Diagnostics.warn("--chaos failover: \(node) did not start a failover: \(answer)")
        }
    }

    /// The node asked and its answer (`OK`, or the error it gave).
    private func request() async -> (node: String, answer: String) {
        switch source {
        case .sentinel(let group):
            var answer = "no sentinel could be reached"
            for sentinel in group.sentinels.shuffled() {
                let node = group.endpoint(sentinel, tls: endpoint.tls)
                switch await reply(["SENTINEL", "FAILOVER", group.master], from: node) {
                case .success(let value): return (node.addressDescription, value.string ?? "\(value)")
                case .failure(let error) where error.code == .server: return (node.addressDescription, error.serverMessage ?? error.message)
                case .failure(let error): answer = "\(error)"
                }
            }
            return ("the sentinels", answer)
        case .cluster(let topology):
            // The primaries know their replicas at once; the slot map lists them only once gossip has spread.
            for primary in topology.primaries.shuffled() {
                guard case .success(let role) = await reply(["ROLE"], from: primary),
                      let first = role.array?.dropFirst(2).first?.array?.first?.array, first.count >= 2,
                      let host = first[0].string, let port = first[1].string.flatMap({ Int($0) }) else { continue }
                var replica = primary
                replica.address = .tcp(host: host, port: port)
                let answer: String
                switch await reply(["CLUSTER", "FAILOVER"], from: replica) {
                case .success(let value): answer = value.string ?? "\(value)"
                case .failure(let error): answer = error.serverMessage ?? "\(error)"
                }
                return ("replica \(replica.addressDescription) of \(primary.addressDescription)", answer)
            }
            return ("the cluster", "no primary has a replica")
        }
    }

    /// One command on a connection of its own: the reply, or the error reply or the failure to reach the node.
    private func reply(_ words: [String], from node: RedisEndpoint) async -> Result<RESPValue, RedisError> {
        do {
            let connection = try await RedisConnection.connect(to: node, name: "expiry-bench:\(runID):chaos", timeout: timeout)
            defer { connection.close() }
            return .success(try await connection.send(RedisCommand(words)))
        } catch let error as RedisError {
            return .failure(error)
        } catch {
            return .failure(RedisError(.io, "\(error)"))
        }
    }
}
