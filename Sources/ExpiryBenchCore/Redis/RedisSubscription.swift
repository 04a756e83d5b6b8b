import Foundation
import Synchronization

/// A pub/sub subscription on a connection of its own, read on a dedicated thread.
///
/// Messages are decoded on that thread, passed through `transform` (which drops what the caller does not want),
/// and queued in `messages`, from which the caller takes everything that has arrived at once. When the connection
/// drops, it reconnects with capped exponential backoff and jitter, subscribes again and carries on;
/// messages published while it was away are gone (pub/sub keeps nothing), which `reconnectCount` makes visible.
public final class RedisSubscription<Element: Sendable>: Sendable {
    /// Transformed messages, in arrival order. Finished after `stop()`.
    public let messages = BatchQueue<Element>()
    private let stopping = Atomic<Bool>(false)
    private let reconnects = Atomic<Int>(0)
    private let thread: ConnectionThread

    /// Subscribes to `channel` and returns once the server has confirmed the subscription.
    /// - Parameter transform: maps a message's payload to an element, or nil to drop it. Runs on the subscription's thread.
    public static func subscribe(
        to channel: String, endpoint: RedisEndpoint, name: String, timeout: Duration,
        transform: @escaping @Sendable (String) -> Element?
    ) async throws -> RedisSubscription {
        try await subscribe(to: channel, endpoint: endpoint, name: name, timeout: timeout, prepare: nil, transform: transform)
    }

    /// As above; `prepare` runs on every (re)connection before SUBSCRIBE, e.g. to re-apply a server setting that
    /// a restarted server forgot.
    static func subscribe(
        to channel: String, endpoint: RedisEndpoint, name: String, timeout: Duration,
        prepare: (@Sendable (HiredisContext, Int) -> Void)?,
        transform: @escaping @Sendable (String) -> Element?
    ) async throws -> RedisSubscription {
        let subscription = RedisSubscription(name: name)
        let box = ContextBox(HiredisContext(endpoint: endpoint, clientName: name))
        let milliseconds = RedisConnection.milliseconds(timeout)
        // The first subscription is made before returning, so that no event after this call is missed.
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Void, Error>) in
            subscription.thread.submit {
                do {
                    try Self.open(box.context, channel: channel, timeoutMilliseconds: milliseconds, prepare: prepare)
                    ready.resume()
                } catch {
                    ready.resume(throwing: error)
                    subscription.messages.finish()
                    subscription.thread.shutdown {}
                    return
                }
                subscription.readLoop(box.context, channel: channel, timeoutMilliseconds: milliseconds, prepare: prepare, transform: transform)
            }
        }
        return subscription
    }

    private init(name: String) {
        thread = ConnectionThread(name: name)
    }

    /// How many times the subscription had to reconnect (each one a window in which events were lost).
    public var reconnectCount: Int { reconnects.load(ordering: .relaxed) }

    /// Ends the subscription; `messages` is finished shortly after (within the poll interval).
    public func stop() {
        stopping.store(true, ordering: .releasing)
        thread.shutdown {}
    }

    private static func open(_ context: HiredisContext, channel: String, timeoutMilliseconds: Int,
                             prepare: (@Sendable (HiredisContext, Int) -> Void)?) throws {
        try context.connect(timeoutMilliseconds: timeoutMilliseconds)
        prepare?(context, timeoutMilliseconds)
        try context.write([RedisCommand("SUBSCRIBE", channel)])
        // Wait for the confirmation: ["subscribe", channel, count].
        let deadline = ContinuousClock.now + .milliseconds(timeoutMilliseconds)
        while ContinuousClock.now < deadline {
            guard let reply = try context.readPushed(waitMilliseconds: 100) else { continue }
            if case .error(let message) = reply {
                throw RedisError(message.hasPrefix("NOAUTH") || message.hasPrefix("NOPERM") ? .authentication : .server,
                                 "SUBSCRIBE \(channel): \(message)", serverMessage: message)
            }
            if let items = reply.array, items.first?.string == "subscribe" { return }
        }
        throw RedisError(.timeout, "SUBSCRIBE \(channel) was not confirmed in time")
    }

    private func readLoop(_ context: HiredisContext, channel: String, timeoutMilliseconds: Int,
                          prepare: (@Sendable (HiredisContext, Int) -> Void)?, transform: @Sendable (String) -> Element?) {
        var batch: [Element] = []
        var backoff = 50
        while !stopping.load(ordering: .acquiring) {
            do {
                // Block briefly for the first message, then drain what is already buffered or readable.
                var wait = 100
                while let reply = try context.readPushed(waitMilliseconds: wait) {
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
                        try Self.open(context, channel: channel, timeoutMilliseconds: timeoutMilliseconds, prepare: prepare)
                        reconnects.add(1, ordering: .relaxed)
                        log.debug("subscriber reconnected after: \(error)")
                        break
                    } catch {
                        continue
                    }
                }
            }
        }
        context.disconnect()
        messages.finish()
    }
}
