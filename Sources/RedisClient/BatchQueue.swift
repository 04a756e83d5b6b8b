import Synchronization

/// A queue between one or more producers and a single async consumer that takes everything queued at once.
///
/// While the consumer is busy, items pile up and are taken together next time: batches grow exactly when
/// the consumer falls behind, which is when batching pays.
package final class BatchQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var waiter: CheckedContinuation<Void, Never>?
        var finished = false
    }
    private let state = Mutex(State())

    package init() {}

    /// Adds items and wakes the consumer.
    package func push(_ items: [Element]) {
        if items.isEmpty { return }
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.items.append(contentsOf: items)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// No more items will come; `take` returns nil once the queue is empty.
    package func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Number of items waiting.
    package var count: Int { state.withLock { $0.items.count } }

    /// Waits for items and returns up to `limit` of them, oldest first; nil when finished and empty.
    package func take(upTo limit: Int) async -> [Element]? {
        while true {
            if let ready = state.withLock({ state -> [Element]?? in
                if !state.items.isEmpty {
                    let taken = Array(state.items.prefix(limit))
                    state.items.removeFirst(taken.count)
                    return .some(taken)
                }
                return state.finished ? .some(nil) : nil
            }) {
                return ready
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if !state.items.isEmpty || state.finished { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }
}
