import Foundation
import Synchronization

/// A pub/sub subscription on a connection of its own, read on a dedicated thread.
///
/// Messages are decoded on that thread, passed through `transform` (which drops what the caller does not want),
/// and queued in `messages`, from which the caller takes everything that has arrived at once. When the connection
/// drops, it reconnects with capped exponential backoff and jitter, subscribes again and carries on;
/// messages published while it was away are gone (pub/sub keeps nothing), which `reconnectCount` makes visible.
package final class RedisSubscription<Element: Sendable>: Sendable {
    /// Transformed messages, in arrival order. Finished after `stop()`.
    package let messages = BatchQueue<Element>()
    /// The cluster slot whose owner this subscription listens to; nil for a plain subscription to one server.
    package let route: ClusterRoute?
    private let channel: String
    private let configured: RedisEndpoint
    private let timeoutMilliseconds: Int
    private let prepare: ConnectionPreparation?
    private let transform: @Sendable (String) -> Element?
    private let current: Mutex<RedisEndpoint>
    private let stopping = Atomic<Bool>(false)
    private let reconnects = Atomic<Int>(0)
    private let thread: ConnectionThread

    /// Subscribes to `channel` and returns once the server has confirmed the subscription.
    /// - Parameter transform: maps a message's payload to an element, or nil to drop it. Runs on the subscription's thread.
    package static func subscribe(
        to channel: String, endpoint: RedisEndpoint, name: String, timeout: Duration,
        transform: @escaping @Sendable (String) -> Element?
    ) async throws -> RedisSubscription {
        try await subscribe(to: channel, endpoint: endpoint, name: name, timeout: timeout, route: nil, prepare: nil, transform: transform)
    }

    /// As above; with a `route`, the subscription listens to the node that owns `route.slot` (`endpoint` then only
    /// gives the credentials), and after a broken connection to whichever node owns it then. Keyspace notifications
    /// are node-local in a cluster: one subscription per primary, each homed on a slot that primary owns.
    package static func subscribe(
        to channel: String, endpoint: RedisEndpoint, name: String, timeout: Duration, route: ClusterRoute?,
        transform: @escaping @Sendable (String) -> Element?
    ) async throws -> RedisSubscription {
        try await subscribe(to: channel, endpoint: endpoint, name: name, timeout: timeout, route: route, prepare: nil, transform: transform)
    }

    /// As above; `prepare` runs on every (re)connection before SUBSCRIBE, e.g. to re-apply a server setting that
    /// a restarted server forgot.
    package static func subscribe(
        to channel: String, endpoint: RedisEndpoint, name: String, timeout: Duration,
        prepare: ConnectionPreparation?,
        transform: @escaping @Sendable (String) -> Element?
    ) async throws -> RedisSubscription {
        try await subscribe(to: channel, endpoint: endpoint, name: name, timeout: timeout, route: nil, prepare: prepare, transform: transform)
    }

    /// As above, with a `route` (see the first overload): on every (re)connection the subscription resolves its
    /// endpoint as the owner of `route.slot`, refreshing the topology first after a failure.
    package static func subscribe(
        to channel: String, endpoint: RedisEndpoint, name: String, timeout: Duration, route: ClusterRoute?,
        prepare: ConnectionPreparation?,
        transform: @escaping @Sendable (String) -> Element?
    ) async throws -> RedisSubscription {
        let subscription = RedisSubscription(channel: channel, endpoint: endpoint, name: name, timeout: timeout, route: route,
                                             prepare: prepare, transform: transform)
        let box = ContextBox(HiredisContext(endpoint: subscription.endpoint, clientName: name))
        // The first subscription is made before returning, so that no event after this call is missed.
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Void, Error>) in
            subscription.thread.submit {
                do {
                    try subscription.open(box, afterFailure: false)
                    ready.resume()
                } catch {
                    box.context.disconnect()
                    ready.resume(throwing: error)
                    subscription.messages.finish()
                    subscription.thread.shutdown {}
                    return
                }
                subscription.readLoop(box)
            }
        }
        return subscription
    }

    private init(channel: String, endpoint: RedisEndpoint, name: String, timeout: Duration, route: ClusterRoute?,
                 prepare: ConnectionPreparation?, transform: @escaping @Sendable (String) -> Element?) {
        self.channel = channel
        self.configured = endpoint
        self.route = route
        self.current = Mutex(route?.target(keeping: endpoint) ?? endpoint)
        self.timeoutMilliseconds = timeout.milliseconds
        self.prepare = prepare
        self.transform = transform
        thread = ConnectionThread(name: name)
    }

    /// The server the subscription listens to (for a routed one, the owner of its slot when it last connected).
    package var endpoint: RedisEndpoint { current.withLock { $0 } }

    /// How many times the subscription had to reconnect (each one a window in which events were lost).
    package var reconnectCount: Int { reconnects.load(ordering: .relaxed) }

    /// Ends the subscription; `messages` is finished shortly after (within the poll interval).
    package func stop() {
        stopping.store(true, ordering: .releasing)
        thread.shutdown {}
    }

    /// Connects (to the current owner of the route's slot, when routed), prepares, subscribes, and waits for the
    /// server's confirmation.
    private func open(_ box: ContextBox, afterFailure: Bool) throws {
        if let route {
            if afterFailure {
                do { try route.topology.refresh(timeoutMilliseconds: timeoutMilliseconds) } catch {
                    log.debug("cluster topology refresh failed: \(error)")
                }
            }
            let target = route.target(keeping: configured)
            if box.retarget(to: target) { current.withLock { $0 = target } }
        }
        let context = box.context
        try context.connect(timeoutMilliseconds: timeoutMilliseconds)
        prepare?(context.connected ?? context.endpoint, { try context.roundTrip([$0], timeoutMilliseconds: timeoutMilliseconds)[0] })
        try context.write([RedisCommand("SUBSCRIBE", channel)])
        // Wait for the confirmation: ["subscribe", channel, count].
        let deadline = ContinuousClock.now + .milliseconds(timeoutMilliseconds)
        while ContinuousClock.now < deadline {
            guard let reply = try context.readPushed(waitMilliseconds: 100) else { continue }
            if case .error(let message) = reply {
                throw RedisError(message.hasPrefix("NOAUTH") ? .authentication : .server,
                                 "SUBSCRIBE \(channel): \(message)", serverMessage: message)
            }
            if let items = reply.array, items.first?.string == "subscribe" { return }
        }
        throw RedisError(.timeout, "SUBSCRIBE \(channel) was not confirmed in time")
    }

    /// How often a routed subscription checks that its node still owns its slot.
    static var homeCheckInterval: Duration { .seconds(1) }

    /// True when the slot a routed subscription listens for is now owned by another node (a failover made the
    /// node a replica: it publishes `del`, not `expired`, and the events now come from the new owner). Refreshes
    /// the shared topology first; a refresh that fails leaves things as they are.
    private func homeMoved() -> Bool {
        guard let route else { return false }
        do { try route.topology.refresh(timeoutMilliseconds: timeoutMilliseconds) } catch {
            log.debug("cluster topology refresh failed: \(error)")
            return false
        }
        return route.target(keeping: configured).address != endpoint.address
    }

    private func readLoop(_ box: ContextBox) {
        var batch: [Element] = []
        var backoff = 50
        var nextHomeCheck = ContinuousClock.now + Self.homeCheckInterval
        while !stopping.load(ordering: .acquiring) {
            do {
                if box.context.isStale {
                    log.debug("the sentinels switched the primary: the subscriber follows")
                    box.context.disconnect()
                    throw RedisError(.closed, "the sentinels switched the primary")
                }
                if route != nil, ContinuousClock.now >= nextHomeCheck {
                    nextHomeCheck = ContinuousClock.now + Self.homeCheckInterval
                    if homeMoved() {
                        log.debug("subscriber's slot moved from \(endpoint.addressDescription): following it")
                        box.context.disconnect()
                        throw RedisError(.closed, "the subscriber's node no longer owns its slot")
                    }
                }
                // Block briefly for the first message, then drain what is already buffered or readable.
                var wait = 100
                while let reply = try box.context.readPushed(waitMilliseconds: wait) {
                    wait = 0
                    if let items = reply.array, items.count == 3, items[0].string == "message",
                       let payload = items[2].string, let element = transform(payload) {
                        batch.append(element)
                    }
                    if batch.count >= 4096 { break }
                }
                if !batch.isEmpty {
                    messages.push(batch)
                    batch.removeAll(keepingCapacity: true)
                }
                backoff = 50
            } catch {
                // The connection broke: reconnect and resubscribe until it works or we are stopped.
                while !stopping.load(ordering: .acquiring) {
                    let jitter = Int.random(in: 0...(backoff / 2))
                    usleep(UInt32((backoff + jitter) * 1000))
                    backoff = min(backoff * 2, 2000)
                    do {
                        try open(box, afterFailure: true)
                        reconnects.add(1, ordering: .relaxed)
                        log.debug("subscriber reconnected to \(box.context.endpoint.addressDescription) after: \(error)")
                        break
                    } catch {
                        continue
                    }
                }
            }
        }
        box.context.disconnect()
        messages.finish()
    }
}

/// A step run on every (re)connection of a subscription before it subscribes, on the connection's own thread: it
/// is handed the node connected to and a function that sends one command there and returns the reply (blocking,
/// within `--timeout`).
package typealias ConnectionPreparation = @Sendable (_ node: RedisEndpoint, _ send: (RedisCommand) throws -> RESPValue) -> Void
