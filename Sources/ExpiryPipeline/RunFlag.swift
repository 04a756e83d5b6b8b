import Synchronization

/// A switch shared between tasks.
package final class RunFlag: Sendable {
    private let value = Atomic<Bool>(false)
    package init() {}
    package func set(_ on: Bool = true) { value.store(on, ordering: .releasing) }
    package var isSet: Bool { value.load(ordering: .acquiring) }
}
