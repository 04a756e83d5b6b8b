import Synchronization

/// An async/await connection to Redis over hiredis.
///
/// Each connection owns one socket and one OS thread; every blocking call happens on that thread and the
/// caller is resumed through a continuation, so awaiting a reply never blocks Swift's cooperative pool.
/// Calls are served in order. `pipeline` writes many commands and reads their replies back in one round trip.
/// After a transport failure the next call reconnects (and re-authenticates) before it runs.
/// A connection opened with a `ClusterRoute` follows its slot around a Redis Cluster (`RedisConnection+Cluster.swift`).
package final class RedisConnection: Sendable {
    /// The server this connection talks to. For a routed connection, the node it was last sent to: the owner of
    /// its home slot, or where the last redirect led; it changes as the cluster does.
    package var endpoint: RedisEndpoint { current.withLock { $0 } }
    /// How long a call may wait for its replies before failing with `.timeout`.
    package let timeout: Duration
    /// The cluster slot this connection is homed on; nil for a plain connection to one server.
    package let route: ClusterRoute?
    /// The endpoint given to `connect`: the credentials and database used on every node a routed connection reaches.
    let configured: RedisEndpoint
    let thread: ConnectionThread
    let box: ContextBox
    let current: Mutex<RedisEndpoint>
    /// `--wait-replicas`: every round trip ends with `WAIT`, and counts as done only once that many replicas hold it.
    package let acknowledgement: ReplicaAcknowledgement?
    private let closed = Atomic<Bool>(false)
    let reconnects = Atomic<Int>(0)
    let redirects = Atomic<Int>(0)
    let unconfirmed = Atomic<Int>(0)

    private init(endpoint: RedisEndpoint, name: String, timeout: Duration, route: ClusterRoute?, acknowledgement: ReplicaAcknowledgement?) {
        let target = route?.target(keeping: endpoint) ?? endpoint
        self.configured = endpoint
        self.current = Mutex(target)
        self.timeout = timeout
        self.route = route
        self.acknowledgement = acknowledgement
        self.thread = ConnectionThread(name: name)
        self.box = ContextBox(HiredisContext(endpoint: target, clientName: name))
    }

    /// Opens a connection, authenticates and selects the database of `endpoint`.
    /// - Throws: `RedisError` with `.io`/`.timeout` when unreachable, `.authentication` when credentials are refused.
    package static func connect(to endpoint: RedisEndpoint, name: String, timeout: Duration = .seconds(5)) async throws -> RedisConnection {
        try await connect(to: endpoint, name: name, timeout: timeout, route: nil)
    }

    /// As above; with a `route`, the connection is homed on `route.slot` of a cluster: it connects to the slot's
    /// current owner (`endpoint` then only gives the credentials and database) and keeps following it.
    /// - Parameter acknowledgement: `--wait-replicas`: see `ReplicaAcknowledgement`.
    package static func connect(to endpoint: RedisEndpoint, name: String, timeout: Duration = .seconds(5),
                               route: ClusterRoute?, acknowledgement: ReplicaAcknowledgement? = nil) async throws -> RedisConnection {
        let connection = RedisConnection(endpoint: endpoint, name: name, timeout: timeout, route: route, acknowledgement: acknowledgement)
        do {
            try await connection.perform { context, milliseconds in
                if let route {
                    try connection.home(on: route.slot, route: route, refreshFirst: false, timeoutMilliseconds: milliseconds)
                } else {
                    try context.connect(timeoutMilliseconds: milliseconds)
                }
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// The server the connection is on now: for a sentinel group, the primary it found (nil when disconnected).
    package func connectedServer() async -> RedisEndpoint? {
        try? await perform { context, _ in context.connected }
    }

    /// How many times this connection had to be reopened after a failure.
    package var reconnectCount: Int { reconnects.load(ordering: .relaxed) }

    /// How many times a routed connection followed a `MOVED` reply to another node (0 for a plain connection).
    package var redirectCount: Int { redirects.load(ordering: .relaxed) }

    /// Sends one command and returns its reply; a server error reply throws `RedisError(.server)`.
    @discardableResult
    package func send(_ command: RedisCommand, extraWait: Duration = .zero) async throws -> RESPValue {
        try await pipeline([command], extraWait: extraWait)[0].unwrapped(for: command.name)
    }

    /// Sends one command given as words, e.g. `send("XLEN", key)`.
    @discardableResult
    package func send(_ words: String...) async throws -> RESPValue {
        try await send(RedisCommand(words))
    }

    /// Writes all `commands`, then reads one reply per command, in order: one round trip for the batch.
    /// Server error replies are returned in place as `.error`; only transport failures throw.
    /// - Parameter extraWait: added to the timeout, for commands that block on purpose (XREADGROUP BLOCK).
    package func pipeline(_ commands: [RedisCommand], extraWait: Duration = .zero) async throws -> [RESPValue] {
        if commands.isEmpty { return [] }
        guard let acknowledgement else { return try await roundTrip(commands, extraWait: extraWait) }
        let started = WallClock.milliseconds()
        var replies = try await roundTrip(commands + [acknowledgement.command], extraWait: extraWait + acknowledgement.timeout, confirming: acknowledgement)
        let answer = replies.removeLast()
        // The usual case, confirmed at once, costs no second hop to the connection's thread.
        if case .integer(let count) = answer, count >= acknowledgement.replicas { return replies }
        let budget = timeout
        let confirmed = try await perform { [self] context, milliseconds in
            // A replica late, or copying the data of a primary it was just attached to by a failover: WAIT again,
            // up to the call's timeout, on this very connection (WAIT counts only the writes of its own
            // connection: a new one would confirm at once), unless the primary changed meanwhile.
            // A replica on its way (attached and copying, or one the sentinels are turning into this primary's
            // replica after a failover) is waited for much longer than one --timeout; none on its way ends the
            // wait after --timeout, with that cause.
            do {
                var confirmed = try acknowledgement.confirmations(in: answer, from: endpoint)
                let since = ContinuousClock.now
                var outlook = ReplicaOutlook.coming
                func waiting() -> Bool {
                    let elapsed = ContinuousClock.now - since
                    return elapsed < budget || (outlook == .coming && elapsed < acknowledgement.patience)
                }
                while confirmed < acknowledgement.replicas, waiting(), context.isConnected, !context.isStale, !acknowledgement.abandoned.isSet {
                    outlook = acknowledgement.outlook(on: context, configured: configured, timeoutMilliseconds: milliseconds)
                    let reply = try context.roundTrip([acknowledgement.command], timeoutMilliseconds: milliseconds + acknowledgement.timeout.milliseconds)[0]
                    confirmed = try acknowledgement.confirmations(in: reply, from: endpoint)
                }
                if confirmed < acknowledgement.replicas {
                    box.outage.failed(at: context.serverAddress, since: started)
                    context.disconnect()
                } else {
                    box.outage.succeeded(on: context.serverAddress)
                }
                return (count: confirmed, outlook: outlook)
            } catch let error as RedisError where error.breaksConnection {
                box.outage.failed(at: context.serverAddress, since: started)
                context.disconnect()
                throw error
            }
        }
        if confirmed.count < acknowledgement.replicas {
            unconfirmed.add(1, ordering: .relaxed)
            if acknowledgement.abandoned.isSet {
                // Not retried (a server answer, not an outage): the run is over.
                throw RedisError(.server, "\(endpoint.addressDescription): the run ended while the writes waited for \(acknowledgement.replicas) replica\(acknowledgement.replicas == 1 ? "" : "s") (WAIT)",
                                 serverMessage: "ABANDONED the run ended")
            }
            // No replica on its way: no retry can be confirmed, and the run ends with the cause.
            if case .none(let why) = confirmed.outlook {
                throw RedisError(.server, "\(endpoint.addressDescription): only \(confirmed.count) of \(acknowledgement.replicas) replicas confirmed the writes within \(timeout) (WAIT): \(why)",
                                 serverMessage: "NOREPLICAS \(why)")
            }
            // Not confirmed: the step is tried again by its caller (every step is safe to repeat), on a new
            // connection that finds the primary as it is then.
            let why = if case .short(let reason) = confirmed.outlook { ": \(reason)" } else { "" }
            throw RedisError(.timeout, "\(endpoint.addressDescription): only \(confirmed.count) of \(acknowledgement.replicas) replicas confirmed the writes within \(timeout) (WAIT)\(why)")
        }
        return replies
    }

    /// How many round trips were not confirmed by enough replicas in time (`--wait-replicas`), each then tried again.
    package var unconfirmedCount: Int { unconfirmed.load(ordering: .relaxed) }

    /// - Parameter confirming: the `WAIT` of `--wait-replicas` ends `commands`: a reply short of replicas leaves
    ///   the call's outcome to the confirmation that follows.
    private func roundTrip(_ commands: [RedisCommand], extraWait: Duration, confirming: ReplicaAcknowledgement? = nil) async throws -> [RESPValue] {
        if let route {
            let extra = extraWait.milliseconds
            return try await perform { [self] _, milliseconds in
                try tracked(confirming: confirming) { try routedRoundTrip(commands, route: route, timeoutMilliseconds: milliseconds, extraMilliseconds: extra) }
            }
        }
        return try await perform { [self] context, milliseconds in
            try tracked(confirming: confirming) { try plainRoundTrip(commands, context: context, milliseconds: milliseconds, extraWait: extraWait) }
        }
    }

    /// Runs one round trip on the connection's thread and notes whether the server served it, for the report of
    /// a failover (`CallOutages`): a transport failure or a reply saying the server cannot serve now (no longer
    /// a primary, loading, cluster down) starts an outage, the next call served ends it.
    private func tracked(confirming: ReplicaAcknowledgement?, _ body: () throws -> [RESPValue]) throws -> [RESPValue] {
        // A call that times out failed from its start, not from when it gave up.
        let started = WallClock.milliseconds()
        do {
            let replies = try body()
            var unavailable = false
            for case .error(let message) in replies where RedisError.isTransient(message) {
                unavailable = true
                break
            }
            if unavailable {
                box.outage.failed(at: box.context.serverAddress)
            } else if confirming != nil, case .error = replies.last {
                // WAIT refused: a server that became a replica.
                box.outage.failed(at: box.context.serverAddress)
            } else if let confirming, case .integer(let count) = replies.last, count < confirming.replicas {
                // Not served until the replicas confirm it: `pipeline` decides.
            } else {
                box.outage.succeeded(on: box.context.serverAddress)
            }
            return replies
        } catch let error as RedisError where error.isTransient {
            box.outage.failed(at: box.context.serverAddress, since: started)
            throw error
        }
    }

    /// `pipeline` for a connection to one server: reconnects first if needed (for a sentinel group, also when
    /// its primary changed since the connection was made), then one round trip.
    private func plainRoundTrip(_ commands: [RedisCommand], context: HiredisContext, milliseconds: Int, extraWait: Duration) throws -> [RESPValue] {
        if context.isConnected, context.isStale { context.disconnect() }
        if !context.isConnected {
            try context.connect(timeoutMilliseconds: milliseconds)
            reconnects.add(1, ordering: .relaxed)
            log.debug("reconnected to \(endpoint.addressDescription)")
        }
        let replies = try context.roundTrip(commands, timeoutMilliseconds: milliseconds + extraWait.milliseconds)
        // A server that became a replica: the next call reconnects, and finds the primary where the endpoint
        // says how (a Sentinel-managed one asks the sentinels again).
        if Self.firstRoleChange(in: replies) != nil { context.disconnect() }
        return replies
    }

    /// The first error reply saying the server is no longer a primary (`READONLY`, `UNBLOCKED`).
    static func firstRoleChange(in replies: [RESPValue]) -> String? {
        for reply in replies {
            if case .error(let message) = reply, RedisError.isRoleChange(message) { return message }
        }
        return nil
    }

    /// Closes the socket and ends the connection's thread once queued calls have run. Idempotent.
    package func close() {
        if closed.exchange(true, ordering: .acquiringAndReleasing) { return }
        let box = self.box
        thread.shutdown { box.context.disconnect() }
    }

    deinit { close() }

    /// Runs `body` on the connection's thread with its context and the timeout in milliseconds.
    func perform<T: Sendable>(_ body: @escaping @Sendable (HiredisContext, Int) throws -> T) async throws -> T {
        if closed.load(ordering: .relaxed) { throw RedisError(.closed, "the connection to \(endpoint.addressDescription) is closed") }
        let box = self.box
        let milliseconds = timeout.milliseconds
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let queued = thread.submit {
                do {
                    continuation.resume(returning: try body(box.context, milliseconds))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            if !queued { continuation.resume(throwing: RedisError(.closed, "the connection to \(endpoint.addressDescription) is closed")) }
        }
    }
}

