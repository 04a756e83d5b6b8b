import Foundation

/// How a connection homed on a cluster slot (`ClusterRoute`) follows that slot: everything here runs on the
/// connection's own thread, where blocking is allowed, inside one call.
///
/// - After a transport failure, the next call refreshes the topology and reconnects to the slot's current owner:
///   this is how a failover is followed.
/// - On a `MOVED` reply the topology is refreshed and the move noted in it, the connection moves to the slot's
///   owner and the whole pipeline is sent again (a pipeline is for one slot's keys), at most `maximumRedirects` times
///   (and as many role changes, below, in any order).
/// - An `ASK` reply is answered by sending `ASKING` and that command to the named node on a temporary connection
///   (not within MULTI/EXEC).
extension RedisConnection {
    /// How many `MOVED` replies, and how many role changes, one call follows before it returns the replies as they are.
    static let maximumRedirects = 5

    /// Connects to the current owner of `slot` (replacing the context if the owner changed). After a failure to
    /// reach it, refreshes the topology once and tries the new owner, if it is another node.
    /// - Parameter refreshFirst: refresh the topology before looking the owner up (after a transport failure).
    func home(on slot: Int, route: ClusterRoute, refreshFirst: Bool, timeoutMilliseconds: Int) throws {
        if refreshFirst { refreshQuietly(route.topology, timeoutMilliseconds: timeoutMilliseconds) }
        let first = ClusterRoute(topology: route.topology, slot: slot).target(keeping: configured)
        do {
            try open(first, timeoutMilliseconds: timeoutMilliseconds)
        } catch let error as RedisError where error.breaksConnection {
            refreshQuietly(route.topology, timeoutMilliseconds: timeoutMilliseconds)
            let second = ClusterRoute(topology: route.topology, slot: slot).target(keeping: configured)
            guard second.address != first.address else { throw error }
            try open(second, timeoutMilliseconds: timeoutMilliseconds)
        }
    }

    /// `pipeline` for a routed connection: reconnects to the home slot's owner if needed, sends, then follows
    /// `MOVED` (whole pipeline again) and `ASK` (that command only) replies.
    func routedRoundTrip(_ commands: [RedisCommand], route: ClusterRoute, timeoutMilliseconds: Int,
                         extraMilliseconds: Int) throws -> [RESPValue] {
        if !box.context.isConnected {
            try home(on: route.slot, route: route, refreshFirst: true, timeoutMilliseconds: timeoutMilliseconds)
            reconnects.add(1, ordering: .relaxed)
            log.debug("reconnected to \(box.context.endpoint.addressDescription), owner of slot \(route.slot)")
        }
        let readMilliseconds = timeoutMilliseconds + extraMilliseconds
        var replies = try box.context.roundTrip(commands, timeoutMilliseconds: readMilliseconds)
        // MOVED and a role change can come in either order within one failover (a blocked read on the old primary
        // is answered `UNBLOCKED` when it turns replica; sent there again from a map not yet refreshed, it answers
        // `MOVED`): each answer is followed, whichever comes, up to `maximumRedirects` of each kind.
        var followed = 0, rerouted = 0
        while true {
            if followed < Self.maximumRedirects, let moved = Self.firstRedirect(in: replies, kind: .moved) {
                followed += 1
                let host = moved.host.isEmpty ? ClusterTopology.host(of: box.context.endpoint) : moved.host
                log.debug("slot \(moved.slot) moved to \(host):\(moved.port) (asked \(box.context.endpoint.addressDescription))")
                // Refresh first, then note: the node that answered MOVED knows better than a node we refreshed
                // from, which may not have heard of the change yet.
                refreshQuietly(route.topology, timeoutMilliseconds: timeoutMilliseconds)
                route.topology.noteMoved(slot: moved.slot, to: (host: host, port: moved.port))
                try home(on: moved.slot, route: route, refreshFirst: false, timeoutMilliseconds: timeoutMilliseconds)
            } else if rerouted < Self.maximumRedirects, let message = Self.firstRoleChange(in: replies) {
                // A failover: the node we reached became a replica of the slot's new owner. The commands did not
                // run; find the owner and send them again there (once the cluster has elected it).
                rerouted += 1
                log.debug("\(box.context.endpoint.addressDescription) is no longer the owner of slot \(route.slot): \(message)")
                box.context.disconnect()
                if rerouted > 1 { usleep(UInt32(min(200 * rerouted, 1000)) * 1000) }
                try home(on: route.slot, route: route, refreshFirst: true, timeoutMilliseconds: timeoutMilliseconds)
            } else {
                break
            }
            redirects.add(1, ordering: .relaxed)
            replies = try box.context.roundTrip(commands, timeoutMilliseconds: readMilliseconds)
        }
        // Inside MULTI an ASK cannot be answered command by command (the transaction is already aborted): the
        // caller gets the replies as they are, and a retry after the migration meets MOVED, which is followed.
        if Self.firstRedirect(in: replies, kind: .ask) != nil, !commands.contains(where: { $0.name == "MULTI" }) {
            replies = try followAsks(commands, replies: replies, timeoutMilliseconds: readMilliseconds)
        }
        return replies
    }

    /// Replaces each `ASK` reply by the reply of its command sent, after `ASKING`, to the node the redirect names:
    /// one temporary connection per node, one round trip for all its commands.
    private func followAsks(_ commands: [RedisCommand], replies: [RESPValue], timeoutMilliseconds: Int) throws -> [RESPValue] {
        var replies = replies
        var groups: [(node: RedisEndpoint, indices: [Int])] = []
        for (index, reply) in replies.enumerated() {
            guard let ask = ClusterRedirect.of(reply), ask.kind == .ask else { continue }
            var node = configured
            node.address = .tcp(host: ask.host.isEmpty ? ClusterTopology.host(of: box.context.endpoint) : ask.host, port: ask.port)
            if let group = groups.firstIndex(where: { $0.node.address == node.address }) {
                groups[group].indices.append(index)
            } else {
                groups.append((node, [index]))
            }
        }
        for group in groups {
            let context = HiredisContext(endpoint: group.node, clientName: nil)
            defer { context.disconnect() }
            try context.connect(timeoutMilliseconds: timeoutMilliseconds)
            let asked = group.indices.flatMap { [RedisCommand("ASKING"), commands[$0]] }
            let answers = try context.roundTrip(asked, timeoutMilliseconds: timeoutMilliseconds)
            for (position, index) in group.indices.enumerated() { replies[index] = answers[2 * position + 1] }
        }
        return replies
    }

    /// Points the connection at `target` (a new context when the address changed: the old one is freed) and connects.
    private func open(_ target: RedisEndpoint, timeoutMilliseconds: Int) throws {
        if box.retarget(to: target) {
            current.withLock { $0 = target }
        }
        try box.context.connect(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Refreshes the topology, logging instead of throwing: a refresh that fails leaves the map as it was, and
    /// the call goes on with what is known.
    private func refreshQuietly(_ topology: ClusterTopology, timeoutMilliseconds: Int) {
        do {
            try topology.refresh(timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            log.debug("cluster topology refresh failed: \(error)")
        }
    }

    /// The first `MOVED` or `ASK` redirect among `replies`. Cheap when there is none: only error replies
    /// starting with the right letter are parsed.
    static func firstRedirect(in replies: [RESPValue], kind: ClusterRedirect.Kind) -> ClusterRedirect? {
        let initial = kind == .moved ? UInt8(ascii: "M") : UInt8(ascii: "A")
        for reply in replies {
            guard case .error(let message) = reply, message.utf8.first == initial,
                  let redirect = ClusterRedirect.parse(message), redirect.kind == kind else { continue }
            return redirect
        }
        return nil
    }
}
