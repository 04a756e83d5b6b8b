import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// The connection layer against a real three-primary Redis Cluster: discovery, hash slots as the server computes
/// them, connections and subscriptions homed on a slot, and how they follow the slot (MOVED from a stale map, ASK
/// during a migration, a broken connection after the slot moved).
@Suite(.serialized)
struct ClusterTests {
    @Test func discoveryFindsEveryPrimaryAndHashSlotsMatchTheServer() async throws {
        try await withRedisCluster { cluster in
            let connection = try await RedisConnection.connect(to: cluster.seed, name: "itest:discover")
            defer { connection.close() }
            let topology = try await ClusterTopology.discover(using: connection)
            let primaries = topology.primaries
            #expect(primaries.map(\.addressDescription) == cluster.nodes.map(\.port).sorted().map { "127.0.0.1:\($0)" })
            #expect(primaries.reduce(0) { $0 + topology.slots(ownedBy: $1).count } == HashSlot.count)
            for primary in primaries {
                let first = try #require(topology.firstSlot(ownedBy: primary))
                #expect(topology.owner(ofSlot: first).address == primary.address)
                #expect(topology.slots(ownedBy: primary).first == first)
                #expect(primary.database == 0 && primary.password == nil)
            }
            // HashSlot.of computes what the server computes, hash tags included (one cluster for both checks:
            // starting one takes redis-cli a second or two).
            let keys = ["123456789", "foo", "{user1000}.following", "{user1000}.followers", "foo{}{bar}", "foo{{bar}}zap",
                        "foo{bar}{zap}", "", "{}", "{", "}", "x{y", "a{b}c", "héllo wörld", "expiry-bench:run1:k:42",
                        "expiry-bench:{run1}:due"]
            for key in keys {
                let server = try await connection.send("CLUSTER", "KEYSLOT", key).int
                #expect(server.map(Int.init) == HashSlot.of(key), "slot of '\(key)'")
            }
            // The node CLUSTER SLOTS names for a key's slot serves that key.
            let owner = topology.owner(ofSlot: HashSlot.of("itest:owner"))
            let direct = try await RedisConnection.connect(to: owner, name: "itest:owner")
            defer { direct.close() }
            #expect(try await direct.send("SET", "itest:owner", "1") == .status("OK"))
        }
    }

    @Test func routedConnectionServesKeysOfItsSlot() async throws {
        try await withRedisCluster { cluster in
            let topology = try await discover(cluster)
            let key = "itest:{routed}:value"
            let route = ClusterRoute(topology: topology, key: key)
            let connection = try await RedisConnection.connect(to: cluster.seed, name: "itest:routed", route: route)
            defer { connection.close() }
            #expect(connection.endpoint.address == topology.owner(ofSlot: route.slot).address)
            let replies = try await connection.pipeline([
                RedisCommand("SET", key, "v1"), RedisCommand("INCR", "itest:{routed}:counter"), RedisCommand("GET", key),
            ])
            #expect(replies == [.status("OK"), .integer(1), .bulk("v1")])
            #expect(connection.redirectCount == 0 && connection.reconnectCount == 0)

            // Without a route nothing is followed: another node's MOVED is the caller's error, as before.
            let other = try #require(topology.primaries.first { $0.address != connection.endpoint.address })
            let plain = try await RedisConnection.connect(to: other, name: "itest:plain")
            defer { plain.close() }
            let error = await #expect(throws: RedisError.self) { try await plain.send("GET", key) }
            #expect(error?.redirect?.kind == .moved && error?.redirect?.slot == route.slot)
            #expect(plain.endpoint.address == other.address)
        }
    }

    @Test func staleTopologyIsCorrectedByMovedAndScriptsAreReloadedThere() async throws {
        try await withRedisCluster { cluster in
            let topology = try await discover(cluster)
            let key = "itest:{stale}:value"
            let slot = HashSlot.of(key)
            let owner = topology.owner(ofSlot: slot)
            let wrong = try #require(topology.primaries.first { $0.address != owner.address })
            guard case .tcp(let wrongHost, let wrongPort) = wrong.address else { throw RedisError(.protocolViolation, "not TCP") }
            topology.noteMoved(slot: slot, to: (host: wrongHost, port: wrongPort))
            #expect(topology.owner(ofSlot: slot).address == wrong.address)

            // The script exists on the wrong node only: after the redirect, evalsha must load it on the owner.
            let script = RedisScript(name: "itest-set", source: "return redis.call('SET', KEYS[1], ARGV[1])")
            let onWrongNode = try await RedisConnection.connect(to: wrong, name: "itest:loader")
            defer { onWrongNode.close() }
            let loaded = LoadedScript(script: script, sha: try await onWrongNode.load(script))

            let connection = try await RedisConnection.connect(to: cluster.seed, name: "itest:stale",
                                                               route: ClusterRoute(topology: topology, slot: slot))
            defer { connection.close() }
            #expect(connection.endpoint.address == wrong.address)
            let reply = try await connection.evalsha(loaded, keys: [key]) { $0.append("from-script") }
            #expect(reply == .status("OK"))
            #expect(try await connection.send("GET", key) == .bulk("from-script"))
            #expect(connection.endpoint.address == owner.address)
            #expect(connection.redirectCount == 1)
            #expect(topology.owner(ofSlot: slot).address == owner.address)
        }
    }

    @Test func subscriptionHomedOnAPrimaryHearsItsExpiredKeys() async throws {
        try await withRedisCluster { cluster in
            let topology = try await discover(cluster)
            let primary = topology.primaries[1]
            let slot = try #require(topology.firstSlot(ownedBy: primary))
            let key = "itest:\(hashTag(forSlot: slot)):expiring"
            let route = ClusterRoute(topology: topology, slot: slot)
            let control = try await RedisConnection.connect(to: cluster.seed, name: "itest:control", route: route)
            defer { control.close() }
            try await control.send("CONFIG", "SET", "notify-keyspace-events", "Ex")

            let subscription = try await RedisSubscription<String>.subscribe(
                to: expiredChannel, endpoint: cluster.seed, name: "itest:cluster-sub",
                timeout: .seconds(5), route: route
            ) { $0 }
            defer { subscription.stop() }
            #expect(subscription.endpoint.address == primary.address)
            try await control.send("SET", key, "1", "PX", "50")
            #expect(try await expired(key, heardBy: subscription, touching: control))
        }
    }

    @Test func migratedSlotIsFollowedThroughAskMovedAndBrokenConnections() async throws {
        try await withRedisCluster { cluster in
            let topology = try await discover(cluster)
            let source = topology.primaries[0]
            let target = topology.primaries[1]
            let slot = try #require(topology.firstSlot(ownedBy: source))
            let tag = hashTag(forSlot: slot)
            let route = ClusterRoute(topology: topology, slot: slot)
            let onSource = try await RedisConnection.connect(to: source, name: "itest:source")
            let onTarget = try await RedisConnection.connect(to: target, name: "itest:target")
            defer { onSource.close(); onTarget.close() }
            let sourceID = try await clusterNodeID(onSource)
            let targetID = try await clusterNodeID(onTarget)

            let routed = try await RedisConnection.connect(to: cluster.seed, name: "itest:routed", route: route)
            let idle = try await RedisConnection.connect(to: cluster.seed, name: "itest:idle", route: route)
            defer { routed.close(); idle.close() }
            let idleClientID = try #require(try await idle.send("CLIENT", "ID").int)
            let subscription = try await RedisSubscription<String>.subscribe(
                to: expiredChannel, endpoint: cluster.seed, name: "itest:following-sub",
                timeout: .seconds(5), route: route
            ) { $0 }
            defer { subscription.stop() }

            // While the slot migrates, a key the source does not have is answered by the target after ASKING.
            try await onTarget.send("CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID)
            try await onSource.send("CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID)
            #expect(try await routed.pipeline([RedisCommand("SET", "itest:\(tag):a", "1"), RedisCommand("GET", "itest:\(tag):a")])
                    == [.status("OK"), .bulk("1")])
            #expect(routed.endpoint.address == source.address && routed.redirectCount == 0)

            // The migration ends: every node learns the slot's new owner; the routed connection follows MOVED.
            for node in [onTarget, onSource] { try await node.send("CLUSTER", "SETSLOT", String(slot), "NODE", targetID) }
            for node in cluster.nodes where node.endpoint.address != source.address && node.endpoint.address != target.address {
                let other = try await connect(node, name: "itest:other")
                try await other.send("CLUSTER", "SETSLOT", String(slot), "NODE", targetID)
                other.close()
            }
            #expect(try await routed.send("GET", "itest:\(tag):a") == .bulk("1"))
            #expect(routed.endpoint.address == target.address && routed.redirectCount == 1)

            // Connections that never saw a MOVED follow the slot after their connection breaks.
            try await Task.sleep(for: .milliseconds(150))  // past the topology's refresh rate limit
            try await onSource.send("CLIENT", "KILL", "ID", String(idleClientID))
            try await killClient(named: "itest:following-sub", on: onSource)
            // The first call may fail on the dead socket; the one after it reconnects to the slot's new owner.
            do {
                #expect(try await idle.send("GET", "itest:\(tag):a") == .bulk("1"))
            } catch let error as RedisError {
                #expect(error.breaksConnection, "unexpected error after CLIENT KILL: \(error)")
                #expect(try await idle.send("GET", "itest:\(tag):a") == .bulk("1"))
            }
            #expect(idle.endpoint.address == target.address && idle.reconnectCount == 1 && idle.redirectCount == 0)
            try await waitUntil { subscription.endpoint.address == target.address && subscription.reconnectCount == 1 }
            try await onTarget.send("CONFIG", "SET", "notify-keyspace-events", "Ex")
            let expiring = "itest:\(tag):expiring"
            try await routed.send("SET", expiring, "1", "PX", "50")
            #expect(try await expired(expiring, heardBy: subscription, touching: routed))
        }
    }
}

/// The topology of `cluster`, discovered from its seed.
private func discover(_ cluster: LocalCluster) async throws -> ClusterTopology {
    let connection = try await RedisConnection.connect(to: cluster.seed, name: "itest:discover")
    defer { connection.close() }
    return try await ClusterTopology.discover(using: connection)
}

/// A hash tag (`{n}`) whose keys fall in `slot`.
private func hashTag(forSlot slot: Int) -> String {
    var n = 0
    while HashSlot.of("{\(n)}") != slot { n += 1 }
    return "{\(n)}"
}

/// True once `subscription` has heard `key` expire (within 3 s); touches the key meanwhile so that Redis expires it
/// at once instead of waiting for its expiry cycle.
private func expired(_ key: String, heardBy subscription: RedisSubscription<String>, touching connection: RedisConnection) async throws -> Bool {
    for _ in 0..<60 {
        try await Task.sleep(for: .milliseconds(50))
        _ = try await connection.send("EXISTS", key)
        if subscription.messages.count > 0 {
            return await subscription.messages.take(upTo: 100)?.contains(key) ?? false
        }
    }
    return false
}

/// Kills the client named `name` on the server `connection` talks to.
private func killClient(named name: String, on connection: RedisConnection) async throws {
    let list = try await connection.send("CLIENT", "LIST").string ?? ""
    let line = try #require(list.split(whereSeparator: \.isNewline).first { $0.contains(" name=\(name) ") })
    let id = try #require(line.split(separator: " ").first { $0.hasPrefix("id=") }).dropFirst(3)
    try await connection.send("CLIENT", "KILL", "ID", String(id))
}

/// Waits (at most 5 s) until `condition` holds; fails the test otherwise.
private func waitUntil(_ condition: () -> Bool) async throws {
    for _ in 0..<100 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("condition not met within 5 s")
}

/// The channel of database 0's expired-key events (a cluster has only database 0).
private let expiredChannel = "__keyevent@0__:expired"
