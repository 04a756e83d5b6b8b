import Foundation
import Synchronization

/// Which primary of a Redis Cluster serves each of the 16384 hash slots, learnt from `CLUSTER SLOTS`.
///
/// Shared by every connection of a run: connections homed on a slot (`ClusterRoute`) ask it where to connect,
/// tell it about `MOVED` replies, and refresh it after a failure, which is how they follow a resharding or a
/// replica promoted by a failover. Every node's endpoint is a copy of the seed's (same username and password,
/// database 0) with the node's host and port. Thread-safe: the map sits behind a `Mutex`.
package final class ClusterTopology: Sendable {
    /// The node the topology was first learnt from: asked last when no other known node answers.
    package let seed: RedisEndpoint

    private struct State {
        /// Every node heard of: primaries, replicas and redirect targets. Never shrinks.
        var nodes: [RedisEndpoint] = []
        /// Per slot, 1 + the index in `nodes` of its primary; 0 while no owner is known.
        var owners = [UInt16](repeating: 0, count: HashSlot.count)
        /// When a refresh last started (successful or not), for the rate limit.
        var lastRefresh: ContinuousClock.Instant?
        /// The nodes that did not answer the last refresh: asked last next time (a failed primary may stay away).
        var unreachable: [RedisEndpoint.Address] = []
        /// Per node index, the index of the primary it was last listed as a replica of.
        var replicaOf: [Int: Int] = [:]
        /// Per node index, the replica that took its slots over (a failover) and when we learnt it.
        var demoted: [Int: (by: Int, at: ContinuousClock.Instant)] = [:]
    }
    private let state = Mutex(State())
    /// Primaries whose slots went to one of their replicas (a failover), as refreshes found them.
    private let switchLog = SwitchLog()

    /// Refreshes closer together than this are skipped: after a failover every connection asks at once.
    static let minimumRefreshInterval = Duration.milliseconds(100)
    /// For this long after a failover, a map that gives the slots back to the old primary comes from a node that
    /// has not heard of the failover yet: it is not taken (a real failback takes longer; a `MOVED` still counts).
    /// The cost: a failback within the window that no MOVED tells of (the promoted node died at once) is followed
    /// only once the window has passed.
    static let staleWindow = Duration.seconds(5)

    init(seed: RedisEndpoint, ranges: [ClusterSlotRange]) {
        var seed = seed
        seed.database = 0
        self.seed = seed
        apply(ranges)
        state.withLock { $0.lastRefresh = .now }
    }

    /// Learns the cluster's slot map by sending `CLUSTER SLOTS` on `connection`, a connection to any node.
    /// - Throws: `RedisError(.server)` when the server is not a cluster node (cluster support disabled),
    ///   `.protocolViolation` when the reply is malformed or assigns no slot at all.
    package static func discover(using connection: RedisConnection) async throws -> ClusterTopology {
        let seed = connection.endpoint
        let reply = try await connection.send("CLUSTER", "SLOTS")
        let ranges = try parseSlots(reply, queriedHost: host(of: seed))
        guard !ranges.isEmpty else {
            throw RedisError(.protocolViolation, "\(seed.addressDescription) is a cluster node, but no hash slot is assigned yet (CLUSTER SLOTS is empty)")
        }
        return ClusterTopology(seed: seed, ranges: ranges)
    }

    /// The primary that serves `slot` (taken modulo 16384). The seed while the slot has no known owner.
    package func owner(ofSlot slot: Int) -> RedisEndpoint {
        state.withLock { state in
            let index = Int(state.owners[slot & (HashSlot.count - 1)])
            return index == 0 ? seed : state.nodes[index - 1]
        }
    }

    /// The distinct primaries that own at least one slot, sorted by host, then port, for stable output.
    package var primaries: [RedisEndpoint] {
        state.withLock { Self.primaries(of: $0) }
    }

    /// The failovers seen so far: each primary whose slots a refresh found with one of its replicas.
    package var switches: [PrimarySwitch] { switchLog.all }

    /// Every slot `node` serves (compared by address only), in ascending order.
    package func slots(ownedBy node: RedisEndpoint) -> [Int] {
        state.withLock { state in
            guard let index = state.nodes.firstIndex(where: { $0.address == node.address }) else { return [] }
            let mark = UInt16(index + 1)
            return state.owners.indices.filter { state.owners[$0] == mark }
        }
    }

    /// The lowest slot `node` serves, or nil when it serves none: a slot to home a connection on that node.
    package func firstSlot(ownedBy node: RedisEndpoint) -> Int? {
        state.withLock { state in
            guard let index = state.nodes.firstIndex(where: { $0.address == node.address }) else { return nil }
            let mark = UInt16(index + 1)
            return state.owners.firstIndex(of: mark)
        }
    }

    /// Records at once that `slot` is now served by the node at `address` (a `MOVED` reply said so); an empty host
    /// means the seed's. A refresh should follow, for the other slots that moved with it. The slot gone from a
    /// primary to its replica is a failover: it is logged (a refresh from a node that has not heard of it yet
    /// would otherwise see it backwards).
    package func noteMoved(slot: Int, to address: (host: String, port: Int)) {
        let host = address.host.isEmpty ? Self.host(of: seed) : address.host
        let promoted = state.withLock { state -> (from: String, to: String)? in
            let index = Self.index(of: .tcp(host: host, port: address.port), in: &state, template: seed)
            let previous = Int(state.owners[slot & (HashSlot.count - 1)]) - 1
            state.owners[slot & (HashSlot.count - 1)] = UInt16(index + 1)
            // The node that answered MOVED knows: a map giving slots to its owner is no longer stale.
            state.demoted[index] = nil
            guard previous >= 0, previous != index, state.replicaOf[index] == previous else { return nil }
            return Self.demote(previous, by: index, in: &state)
        }
        if let promoted { recordFailover(promoted) }
    }

    /// Asks the known primaries in turn, then their replicas, then the seed (nodes that did not answer the last
    /// refresh at the end), for `CLUSTER SLOTS`, each on a temporary connection, and takes the first answer.
    /// Blocks: call it only from a thread of the connection layer, never from Swift's cooperative pool.
    /// Does nothing when a refresh started less than 100 ms ago.
    /// - Throws: the last node's error when none answered; the map is then left as it was.
    func refresh(timeoutMilliseconds: Int) throws {
        let now = ContinuousClock.now
        let candidates: [RedisEndpoint]? = state.withLock { state in
            if let last = state.lastRefresh, now - last < Self.minimumRefreshInterval { return nil }
            state.lastRefresh = now
            var candidates = Self.primaries(of: state)
            for node in state.nodes + [seed] where !candidates.contains(where: { $0.address == node.address }) {
                candidates.append(node)
            }
            let unreachable = state.unreachable
            return candidates.filter { !unreachable.contains($0.address) } + candidates.filter { unreachable.contains($0.address) }
        }
        guard let candidates else { return }
        var lastError: Error = RedisError(.io, "no node of the cluster is known")
        var unreachable: [RedisEndpoint.Address] = []
        var answeredStale = false
        defer { state.withLock { $0.unreachable = unreachable } }
        for node in candidates {
            let context = HiredisContext(endpoint: node, clientName: nil)
            defer { context.disconnect() }
            do {
                try context.connect(timeoutMilliseconds: timeoutMilliseconds)
                let reply = try context.roundTrip([RedisCommand("CLUSTER", "SLOTS")], timeoutMilliseconds: timeoutMilliseconds)[0]
                let ranges = try Self.parseSlots(reply.unwrapped(for: "CLUSTER SLOTS"), queriedHost: Self.host(of: node))
                // A node that is not (or no longer) part of the cluster knows no slot, and one that has not heard of
                // the last failover yet gives its slots back to the old primary: ask the next one.
                if ranges.isEmpty { continue }
                guard apply(ranges) else {
                    log.debug("\(node.addressDescription) has not heard of the last failover yet: its map is not taken")
                    answeredStale = true
                    continue
                }
                log.debug("cluster topology refreshed from \(node.addressDescription)")
                return
            } catch {
                if (error as? RedisError)?.breaksConnection ?? true { unreachable.append(node.address) }
                lastError = error
            }
        }
        // Every node that answered is behind us: the map stays as it is, and MOVED replies correct it.
        if answeredStale { return }
        throw lastError
    }

    /// As `refresh(timeoutMilliseconds:)`, for async callers: the blocking work runs on a thread of its own,
    /// never on Swift's cooperative pool. Rate-limited the same way.
    package func refresh(timeout: Duration = .seconds(5)) async throws {
        let milliseconds = timeout.milliseconds
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            let thread = Thread { [self] in
                do {
                    try refresh(timeoutMilliseconds: milliseconds)
                    done.resume()
                } catch {
                    done.resume(throwing: error)
                }
            }
            thread.name = "expiry-bench:cluster-refresh"
            thread.start()
        }
    }

    /// Takes the ranges of a `CLUSTER SLOTS` reply as the new map. Slots the reply leaves out keep the owner
    /// they had: a node that has not heard of a change yet should not make us forget where a slot was.
    /// A slot that went from a primary to one of that primary's replicas (or to a node that the old primary now
    /// replicates) is a failover: it is logged.
    /// - Returns: false, and nothing taken, when the reply gives a slot back to a primary that lost it to a
    ///   failover less than `staleWindow` ago (the node answering has not heard of the failover yet).
    @discardableResult
    func apply(_ ranges: [ClusterSlotRange]) -> Bool {
        let now = ContinuousClock.now
        let promoted = state.withLock { state -> [(from: String, to: String)]? in
            let indices = ranges.map { Self.index(of: .tcp(host: $0.host, port: $0.port), in: &state, template: seed) }
            for (range, index) in zip(ranges, indices) {
                guard let demotion = state.demoted[index], now - demotion.at < Self.staleWindow else { continue }
                if range.slots.contains(where: { Int(state.owners[$0]) - 1 == demotion.by }) { return nil }
            }
            var moves = Set<[Int]>()
            for (range, index) in zip(ranges, indices) {
                let mark = UInt16(index + 1)
                for slot in range.slots {
                    let previous = Int(state.owners[slot]) - 1
                    if previous >= 0, previous != index { moves.insert([previous, index]) }
                    state.owners[slot] = mark
                }
            }
            let before = state.replicaOf
            for (range, index) in zip(ranges, indices) {
                state.replicaOf[index] = nil
                for replica in range.replicas {
                    state.replicaOf[Self.index(of: .tcp(host: replica.host, port: replica.port), in: &state, template: seed)] = index
                }
            }
            // The new owner was the old one's replica, or the old owner is now the new one's (a map learnt before
            // gossip had listed the replicas knows only the second).
            return moves.filter { before[$0[1]] == $0[0] || state.replicaOf[$0[0]] == $0[1] }.sorted { $0.lexicographicallyPrecedes($1) }
                .map { Self.demote($0[0], by: $0[1], in: &state) }
        }
        guard let promoted else { return false }
        promoted.forEach(recordFailover)
        return true
    }

    /// Notes that `primary` lost its slots to its replica `replica` now; returns the pair's addresses.
    /// The window runs from the first time this pair is learnt: hearing it again does not extend it.
    private static func demote(_ primary: Int, by replica: Int, in state: inout State) -> (from: String, to: String) {
        if state.demoted[primary]?.by != replica { state.demoted[primary] = (by: replica, at: .now) }
        state.demoted[replica] = nil
        return (from: state.nodes[primary].addressDescription, to: state.nodes[replica].addressDescription)
    }

    private func recordFailover(_ move: (from: String, to: String)) {
        log.debug("cluster failover: \(move.from) → \(move.to)")
        switchLog.record(from: move.from, to: move.to)
    }

    /// The index of the node at `address` in `state.nodes`, added (as a copy of `template`) if it is new.
    private static func index(of address: RedisEndpoint.Address, in state: inout State, template: RedisEndpoint) -> Int {
        if let index = state.nodes.firstIndex(where: { $0.address == address }) { return index }
        var node = template
        node.address = address
        state.nodes.append(node)
        return state.nodes.count - 1
    }

    private static func primaries(of state: State) -> [RedisEndpoint] {
        var owning = [Bool](repeating: false, count: state.nodes.count)
        for mark in state.owners where mark != 0 { owning[Int(mark) - 1] = true }
        return state.nodes.indices.filter { owning[$0] }.map { state.nodes[$0] }.sorted(by: ordered)
    }

    /// Host, then port: `127.0.0.1:7100` before `127.0.0.1:10000`.
    private static func ordered(_ a: RedisEndpoint, _ b: RedisEndpoint) -> Bool {
        switch (a.address, b.address) {
        case let (.tcp(hostA, portA), .tcp(hostB, portB)): return hostA == hostB ? portA < portB : hostA < hostB
        default: return a.addressDescription < b.addressDescription
        }
    }

    /// The host of a TCP endpoint; loopback for a unix socket (a cluster node announces no socket path).
    static func host(of endpoint: RedisEndpoint) -> String {
        if case .tcp(let host, _) = endpoint.address { return host }
        return "127.0.0.1"
    }
}
