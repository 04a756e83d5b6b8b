import Synchronization

/// `--wait-replicas N`: a connection's round trips count as done only once `WAIT` says `replicas` replicas hold
/// every write the connection made, so a failover to one of them loses nothing (Redis replicates asynchronously).
package struct ReplicaAcknowledgement: Sendable, Equatable {
    package let replicas: Int
    /// How long one `WAIT` may block.
    package let timeout: Duration
    /// How long a round trip waits for its confirmation while a replica is on its way to the primary (attached and
    /// copying its data, or one the sentinels are turning into its replica after a failover): much longer than
    /// `--timeout`, since the sentinels take about 10 s to turn an old primary into the new one's replica.
    package let patience: Duration
    /// Set when the run ends: a round trip still waiting for its confirmation stops waiting and fails, so that
    /// no connection holds the end of the run back by up to `patience`.
    package let abandoned = AbandonFlag()

    package init(replicas: Int, timeout: Duration, patience: Duration = .seconds(60)) {
        self.replicas = replicas
        self.timeout = timeout
        self.patience = patience
    }

    package static func == (lhs: Self, rhs: Self) -> Bool {
        (lhs.replicas, lhs.timeout, lhs.patience) == (rhs.replicas, rhs.timeout, rhs.patience)
    }

    var command: RedisCommand { RedisCommand("WAIT", String(replicas), String(max(1, timeout.milliseconds))) }

    /// The replicas a WAIT reply counts. A server that became a replica refuses WAIT: that breaks the connection
    /// (the call is tried again at the primary); any other refusal (NOPERM) is the server's answer.
    func confirmations(in reply: RESPValue, from endpoint: RedisEndpoint) throws -> Int {
        switch reply {
        case .integer(let count): return Int(count)
        case .error(let message) where message.contains("replica") || RedisError.isRoleChange(message):
            throw RedisError(.io, "\(endpoint.addressDescription) is no longer a primary (WAIT: \(message))")
        case .error(let message): throw RedisError(.server, "WAIT: \(message)", serverMessage: message)
        default: throw RedisError(.protocolViolation, "WAIT returned \(reply)")
        }
    }

    /// Whether the replicas still missing are on their way to the primary `context` is connected to: attached to
    /// it (its `INFO replication`), or, for a primary found through sentinels, known to them as its replicas and
    /// not down. Blocking: call it on the connection's thread.
    func outlook(on context: HiredisContext, configured: RedisEndpoint, timeoutMilliseconds: Int) -> ReplicaOutlook {
        let primary = context.serverAddress
        guard let info = try? context.roundTrip([RedisCommand("INFO", "replication")], timeoutMilliseconds: timeoutMilliseconds)[0].string else {
            // The primary does not tell (INFO refused): nothing says the replicas will not come.
            return .coming
        }
        let attached = ReplicaOutlook.attachedReplicas(in: info)
        // A server no longer a primary is being switched: the next call finds the primary there is then.
        if attached >= replicas || !info.contains("role:master") { return .coming }
        guard case .sentinel(let group) = configured.address else {
            // Nothing says whether one will come (a cluster's demoted primary rejoins as a replica by itself).
            return .short("the primary \(primary) has \(attached) replica\(attached == 1 ? "" : "s") attached, and --wait-replicas needs \(replicas)")
        }
        // The sentinels' replicas are those of the primary they name now: if that is another server, a failover
        // is under way and this connection moves to it.
        let named = SentinelResolver.askInTurn(group, tls: configured.tls, timeoutMilliseconds: timeoutMilliseconds,
                                               RedisCommand("SENTINEL", "get-master-addr-by-name", group.master)) { _, answer -> String? in
            guard let pair = try? answer.get().array, pair.count == 2, let host = pair[0].string, let port = pair[1].string.flatMap({ Int($0) }) else { return nil }
            return RedisEndpoint(address: .tcp(host: host, port: port)).addressDescription
        }
        guard named == primary else { return .coming }
        guard let known = try? SentinelResolver.replicas(of: group, tls: configured.tls, timeoutMilliseconds: timeoutMilliseconds) else { return .coming }
        let up = known.filter { !$0.flags.contains("s_down") && !$0.flags.contains("o_down") }
        if attached + up.filter({ !$0.attached }).count >= replicas { return .coming }
        let down = known.filter { $0.flags.contains("s_down") || $0.flags.contains("o_down") }.map(\.address)
        // Only replicas the sentinels see down end the wait: right after a switch they may list none yet.
        guard !down.isEmpty else { return .short("the primary \(primary) has no replica in sync, and the sentinels list none for it yet") }
        return .none("the primary \(primary) has no replica in sync: the sentinels see its replica\(down.count == 1 ? "" : "s") \(down.joined(separator: ", ")) down")
    }
}

/// Whether a primary short of the replicas `--wait-replicas` needs will have them.
enum ReplicaOutlook: Sendable, Equatable {
    /// They are attached (copying or catching up), or on their way: keep waiting.
    case coming
    /// None is on its way, as the sentinels see it: why, for the user. The run ends with that cause.
    case none(String)
    /// Too few are attached, and nothing tells whether more will come: why. The step is tried again.
    case short(String)

    /// Replicas attached to a primary, whatever their state (`slaveN:` lines of `INFO replication`).
    static func attachedReplicas(in info: String) -> Int {
        info.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("slave") && $0.contains("ip=") }.count
    }
}

/// A one-way switch, shared by every connection of a run: once set, their waits for replicas end.
package final class AbandonFlag: Sendable {
    private let value = Atomic<Bool>(false)
    package init() {}
    package func set() { value.store(true, ordering: .releasing) }
    package var isSet: Bool { value.load(ordering: .acquiring) }
}
