import Synchronization
import ExpiryPipeline

/// Tells a running benchmark to stop early (SIGINT/SIGTERM), and how urgently.
package final class StopSignal: Sendable {
    private let requests = Atomic<Int>(0)
    package init() {}

    /// Asks the run to stop; returns how many times it has been asked (1 the first time).
    @discardableResult
    package func request() -> Int { requests.add(1, ordering: .relaxed).newValue }

    /// True once a stop was requested.
    package var isRequested: Bool { requests.load(ordering: .relaxed) > 0 }
}
