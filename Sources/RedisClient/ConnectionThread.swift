import Foundation
import Synchronization

/// A dedicated OS thread that runs blocking jobs one at a time, in submission order.
///
/// This is where hiredis's blocking reads and writes happen, so that Swift's cooperative thread pool
/// (one thread per core) never waits on a socket.
final class ConnectionThread: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var accepting = true
    }
    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in self.runLoop() }
        thread.name = name
        thread.stackSize = 512 * 1024
        thread.start()
    }

    /// Queues a job. Returns false, without queuing it, once `shutdown` has been called.
    @discardableResult
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        let queued = state.withLock { state -> Bool in
            guard state.accepting else { return false }
            state.jobs.append(job)
            return true
        }
        if queued { wakeup.signal() }
        return queued
    }

    /// Runs `last` after every job already queued, then ends the thread. Later `submit`s are refused.
    func shutdown(_ last: @escaping @Sendable () -> Void) {
        state.withLock { state in
            guard state.accepting else { return }
            state.jobs.append(last)
            state.accepting = false
        }
        wakeup.signal()
    }

    private func runLoop() {
        while true {
            wakeup.wait()
            let (job, finished) = state.withLock { state -> ((@Sendable () -> Void)?, Bool) in
                let job = state.jobs.isEmpty ? nil : state.jobs.removeFirst()
                return (job, !state.accepting && state.jobs.isEmpty)
            }
            job?()
            if finished { return }
        }
    }
}

/// Holds the `HiredisContext` of one connection; a connection that follows a cluster slot to another node
/// replaces it (after disconnecting the old one, which is then freed: one owner at a time).
///
/// `@unchecked Sendable` is safe because `context` is only ever read or replaced by jobs running on the
/// connection's single `ConnectionThread`, which runs them strictly one after another; no other thread
/// dereferences it.
final class ContextBox: @unchecked Sendable {
    var context: HiredisContext
    /// The connection's outage in progress, if its calls are failing (for the report of a failover).
    var outage = OutageTracker()
    init(_ context: HiredisContext) { self.context = context }

    /// Makes `context` a context for `endpoint`: the current one if it already points there, else a new one
    /// that replaces it (the old one is disconnected first). Returns true when it was replaced. Not connected yet.
    @discardableResult
    func retarget(to endpoint: RedisEndpoint) -> Bool {
        if context.endpoint == endpoint { return false }
        context.disconnect()
        context = HiredisContext(endpoint: endpoint, clientName: context.clientName)
        return true
    }
}
