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
        if attached >= replicas { return .coming }
        guard case .sentinel(let group) = configured.address else {
            return .none("the primary \(primary) has \(attached) replica\(attached == 1 ? "" : "s") attached, and --wait-replicas needs \(replicas)")
        }
        guard let known = try? SentinelResolver.replicas(of: group, tls: configured.tls, timeoutMilliseconds: timeoutMilliseconds) else { return .coming }
        let up = known.filter { !$0.flags.contains("s_down") && !$0.flags.contains("o_down") }
        if attached + up.filter({ !$0.attached }).count >= replicas { return .coming }
        let down = known.filter { $0.flags.contains("s_down") || $0.flags.contains("o_down") }.map(\.address)
        return .none("the primary \(primary) has no replica in sync"
                     + (down.isEmpty ? " and the sentinels know of none" : ": the sentinels see its replica\(down.count == 1 ? "" : "s") \(down.joined(separator: ", ")) down"))
    }
}

/// Whether a primary short of the replicas `--wait-replicas` needs will have them.
enum ReplicaOutlook: Sendable, Equatable {
    /// They are attached (copying or catching up), or on their way: keep waiting.
    case coming
    /// None is on its way: why, for the user.
    case none(String)

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
