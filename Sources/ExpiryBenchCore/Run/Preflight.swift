import ExpiryPipeline
import RedisClient

/// What the server says about itself (INFO), read once before any key is written.
package struct ServerFacts: Sendable, Equatable {
    /// The server as it names itself (`Valkey 9.1.2`).
    package var server: ServerIdentity
    /// The Redis version the server is compatible with (`redis_version`; Valkey reports 7.2.4): what the
    /// capability checks read.
    package var version: String
    package var clusterEnabled: Bool
    /// `maxmemory` in bytes; 0 for no limit.
    package var maxMemory: Int
    package var maxMemoryPolicy: String
    package var usedMemory: Int
    /// False when INFO was refused (a user without `+info`): the memory figures are then unknown, not zero.
    package var memoryKnown = true
    /// `master` or `slave` (INFO replication's `role`); nil when unknown.
    package var role: String?
    /// Replicas connected to this server (`connected_slaves`), and those of them in sync (`state=online`).
    package var replicas = 0
    package var replicasInSync = 0
    /// The primary of a replica (`master_host:master_port`).
    package var primary: String?
    /// `maxclients` (INFO clients since Redis 7.0, else CONFIG GET) and the clients connected (`connected_clients`,
    /// this tool's control connection among them); nil when the server would not tell.
    package var maxClients: Int?
    package var connectedClients: Int?

    /// The value of `field` in an INFO reply.
    static func field(_ field: String, in info: String) -> String? {
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix(field + ":") {
            return String(line.dropFirst(field.count + 1))
        }
        return nil
    }

    /// Reads the facts from INFO replies (server, memory and cluster sections, in one text).
    package init(info: String) {
        version = Self.field("redis_version", in: info) ?? "unknown"
        server = ServerIdentity { Self.field($0, in: info) }
        clusterEnabled = Self.field("cluster_enabled", in: info) == "1"
        maxMemory = Int(Self.field("maxmemory", in: info) ?? "") ?? 0
        maxMemoryPolicy = Self.field("maxmemory_policy", in: info) ?? "noeviction"
        usedMemory = Int(Self.field("used_memory", in: info) ?? "") ?? 0
        role = Self.field("role", in: info)
        replicas = Int(Self.field("connected_slaves", in: info) ?? "") ?? 0
        replicasInSync = Self.replicasInSync(in: info)
        if let host = Self.field("master_host", in: info), let port = Self.field("master_port", in: info) { primary = "\(host):\(port)" }
        maxClients = Self.field("maxclients", in: info).flatMap { Int($0) }
        connectedClients = Self.field("connected_clients", in: info).flatMap { Int($0) }
    }

    /// The facts HELLO gives to a user who may not run INFO (it is in `@dangerous`): the version and whether
    /// the server is a cluster node; the memory figures stay unknown.
    package init(hello reply: RESPValue) {
        let fields = reply.fieldMap
        server = ServerIdentity(hello: fields)
        version = fields["version"] ?? "unknown"
        clusterEnabled = fields["mode"] == "cluster"
        maxMemory = 0
        maxMemoryPolicy = "unknown"
        usedMemory = 0
        memoryKnown = false
    }

    /// Replicas whose INFO replication line (`slave0:ip=…,state=online,…`) says they are in sync: only those
    /// acknowledge WAIT (one still loading its first copy does not).
    static func replicasInSync(in info: String) -> Int {
        info.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("slave") && $0.contains("state=online") }.count
    }

    /// True when the version is at least `major.minor`.
    package func isAtLeast(_ major: Int, _ minor: Int) -> Bool {
        let parts = version.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2 else { return true }
        return (parts[0], parts[1]) >= (major, minor)
    }
}

/// Checks made before any key is written. Each failure is one line a user can act on, with its exit code.
package enum Preflight {
    /// Reads INFO (which works where CONFIG is renamed or forbidden, as on managed services); for a user who may
    /// not run INFO (`-@dangerous`), HELLO's version and mode instead, with a warning that the memory checks
    /// are skipped.
    static func facts(_ control: RedisConnection, endpoint: RedisEndpoint, warn: (String) -> Void = { Diagnostics.warn($0) }) async throws -> ServerFacts {
        do {
            let replies = try await control.pipeline([RedisCommand("INFO", "server"), RedisCommand("INFO", "memory"), RedisCommand("INFO", "cluster"),
                                                         RedisCommand("INFO", "replication"), RedisCommand("INFO", "clients"),
                                                         RedisCommand("CONFIG", "GET", "maxclients")])
            if case .error(let message) = replies[0], message.hasPrefix("NOPERM") {
                let hello = try await control.send("HELLO")
                warn("INFO is refused to this user (\(message)): the memory and eviction checks are skipped; grant +info to have them.")
                return ServerFacts(hello: hello)
            }
            if case .error(let message) = replies[0] {
                throw RedisError(message.hasPrefix("NOAUTH") ? .authentication : .server, "INFO: \(message)", serverMessage: message)
            }
            var facts = ServerFacts(info: replies.compactMap(\.string).joined(separator: "\n"))
            // Before 7.0 INFO does not say maxclients; CONFIG may (a refusal leaves it unknown).
            if facts.maxClients == nil { facts.maxClients = replies[5].fieldMap["maxclients"].flatMap { Int($0) } }
            return facts
        } catch let error as RedisError {
            throw RunError(error, endpoint: endpoint)
        }
    }

    /// Refuses what would make the run impossible (exit 78) and warns about what may spoil it.
    package static func check(_ facts: ServerFacts, configuration: RunConfiguration, endpoint: RedisEndpoint, warn: (String) -> Void) throws {
        try checkWritable(facts, endpoint: endpoint, by: .run)
        try checkReplication(facts, configuration: configuration, endpoint: endpoint, warn: warn)
        if !facts.memoryKnown { return }
        if let warning = evictionWarning(policy: facts.maxMemoryPolicy) { warn(warning) }
        let needed = estimatedBytes(configuration)
        if facts.maxMemory > 0, facts.usedMemory + needed > facts.maxMemory {
            let message = "the run needs about \(megabytes(needed)) MB in Redis, but only \(megabytes(max(0, facts.maxMemory - facts.usedMemory))) MB are free under maxmemory \(megabytes(facts.maxMemory)) MB (\(megabytes(facts.usedMemory)) MB used)"
            if configuration.force {
                warn(message + "; going on because of --force.")
            } else {
                throw RunError(.configuration, message + ". Lower --max-outstanding or --background-keys, raise maxmemory, or pass --force.")
            }
        }
    }

    /// What an evicting `maxmemory-policy` may take when memory is full, for the run's warning; nil for noeviction.
    /// Every key of the run carries a TTL but its locks (whose lease is in their value): the data and probe keys
    /// their deadline, leases theirs, and the stream, due index, bitmaps, tallies, commit records and meta a 1 h
    /// safety TTL renewed while the run lives. So a volatile-* policy may evict any of them but the locks, and an
    /// allkeys-* policy any key at all, the user's included.
    package static func evictionWarning(policy: String) -> String? {
        let ttlKeys = "every key of the run carries a TTL but its locks (data keys their deadline; the stream, due index, bitmaps, tallies and meta a 1 h safety TTL)"
        let outcome = "an evicted stream or due index fails the run, an evicted data key is published by the sweeper; the report counts the keys evicted during the run. noeviction avoids that."
        switch policy {
        case "noeviction": return nil
        case _ where policy.hasPrefix("volatile"):
            return "maxmemory-policy is \(policy): when memory is full, Redis evicts keys with a TTL, and \(ttlKeys), so it may evict any of them, and the user's keys with a TTL: \(outcome)"
        case _ where policy.hasPrefix("allkeys"):
            return "maxmemory-policy is \(policy): when memory is full, Redis evicts any key, the user's keys included, and any of the run's (locks, stream and due index too) to make room for the run's: \(outcome)"
        default:
            return "maxmemory-policy is \(policy): when memory is full, Redis may evict keys, the run's (\(ttlKeys)) and the user's: \(outcome)"
        }
    }

    /// What is about to write to the server: the refusals name it, and what it needs.
    package enum Writer: Sendable {
        /// A run (`expiry-bench run`, a consumer process).
        case run
        /// `expiry-bench probe`.
        case probe

        var subject: String { self == .run ? "the run" : "the probe" }
        /// The commands that first came with Redis 6.2.
        var needsFromRedis62: String { self == .run ? "XAUTOCLAIM and ZMSCORE" : "SET ... PXAT" }
    }

    /// What a run and a probe both refuse, before writing anything (exit 78): a server older than Redis 6.2
    /// (without the commands they need), and a replica (which refuses writes or loses them to its primary; it is
    /// named, with its primary). A cluster node is left to the caller.
    package static func checkWritable(_ facts: ServerFacts, endpoint: RedisEndpoint, by writer: Writer) throws {
        if !facts.isAtLeast(6, 2) {
            throw RunError(.configuration, "\(facts.server) at \(endpoint.addressDescription) is too old: \(writer.subject) needs \(writer.needsFromRedis62), which came with Redis 6.2. Use Redis 6.2 or newer, or any Valkey.")
        }
        if !facts.clusterEnabled, facts.role == "slave" {
            throw RunError(.configuration, "\(endpoint.addressDescription) is a replica\(facts.primary.map { " of \($0)" } ?? ""): \(writer.subject) writes keys, which a replica refuses or loses to its primary. Point --redis at the primary\(facts.primary.map { ", \($0)" } ?? "").")
        }
    }

    /// `--wait-replicas N` needs N replicas; a primary with replicas, reached directly, is said to be one: a
    /// failover would lose its last writes, and the verdict checks this server only. (A replica is refused by
    /// `checkWritable`; a cluster's primaries are checked one by one by `checkReplicas`.)
    static func checkReplication(_ facts: ServerFacts, configuration: RunConfiguration, endpoint: RedisEndpoint, warn: (String) -> Void) throws {
        guard !facts.clusterEnabled, facts.role != nil else { return }
        try checkReplicas(connected: facts.replicas, inSync: facts.replicasInSync, wanted: configuration.waitReplicas, on: endpoint)
        if facts.replicas > 0, configuration.waitReplicas == 0 {
            let count = "\(facts.replicas) replica\(facts.replicas == 1 ? "" : "s")"
            if case .sentinel(let group) = endpoint.address {
                warn("the primary '\(group.master)' has \(count): replication is asynchronous, so writes a failover catches before they reach a replica are lost (the run follows the failover, and its verdict says what was lost). --wait-replicas \(facts.replicas) makes every write wait for them.")
            } else {
                warn("\(endpoint.addressDescription) is a primary with \(count): replication is asynchronous, so a failover during the run would lose its last writes, and the verdict checks this primary only. --wait-replicas \(facts.replicas) makes every write wait for them, or reach it through its sentinels (redis-sentinel://host:26379,...#name) to follow a failover.")
            }
        }
    }

    /// A server whose free client slots (`maxclients` less those connected) are fewer than the connections the run
    /// still has to open would turn some away mid-setup: refused here, before anything is written. Skipped when
    /// the server does not say its limit.
    static func checkClientLimit(_ facts: ServerFacts, needed: RunError.ClientNeed, endpoint: RedisEndpoint) throws {
        guard let limit = facts.maxClients, let connected = facts.connectedClients else { return }
        // The control connection is open already, and counted in `connected`.
        guard needed.connections - 1 > limit - connected else { return }
        throw RunError(.configuration, RunError.clientLimitMessage(endpoint, limit: limit, connected: connected, needed: needed))
    }

    /// `--wait-replicas N` on a primary with fewer replicas in sync: every WAIT would time out.
    static func checkReplicas(connected: Int, inSync: Int, wanted: Int, on endpoint: RedisEndpoint) throws {
        guard wanted > inSync else { return }
        let syncing = connected > inSync ? " (\(connected - inSync) more still copying its data)" : ""
        throw RunError(.configuration, "--wait-replicas \(wanted): \(endpoint.addressDescription) has \(inSync) replica\(inSync == 1 ? "" : "s") in sync\(syncing), so no write could be confirmed. Give at most \(inSync), or wait until its replicas are in sync (INFO replication: state=online).")
    }

    /// `checkReplicas` on every primary of a cluster (INFO replication on each).
    static func checkReplicas(wanted: Int, nodes: [RedisConnection]) async throws {
        guard wanted > 0 else { return }
        for node in nodes {
            let info = try await node.send(RedisCommand("INFO", "replication")).string ?? ""
            try checkReplicas(connected: Int(ServerFacts.field("connected_slaves", in: info) ?? "") ?? 0, inSync: ServerFacts.replicasInSync(in: info),
                              wanted: wanted, on: node.endpoint)
        }
    }

    /// What the run may hold in Redis at its peak: the keys in flight (key, due-index entry, stream entry, lock,
    /// commit records), the background keys, the processed bitmap, and a margin.
    package static func estimatedBytes(_ configuration: RunConfiguration) -> Int {
        let perKeyInFlight = 400
        return min(configuration.keys, configuration.effectiveMaxOutstanding) * perKeyInFlight
            + configuration.backgroundKeys * 120
            + configuration.keys / 8
            + 2 << 20
    }

    static func megabytes(_ bytes: Int) -> String {
        String(Double(bytes / 100_000) / 10)
    }
}
