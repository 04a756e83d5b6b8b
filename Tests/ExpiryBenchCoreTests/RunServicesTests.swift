import ServiceLifecycle
import Synchronization
import Testing
@testable import ExpiryBenchCore

/// The run's lifecycle without Redis: the services of a run stop in the reverse of their order once the watch
/// returns, a service done early waits for the stop instead of ending the group, components of one kind stop
/// together, and an error is the run's first failure, not the group's end.
@Suite("Run services")
struct RunServicesTests {
    struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }

    @Test func servicesStopInReverseOrderOnceTheWatchReturns() async {
        let events = Mutex<[String]>([])
        let note: @Sendable (String) -> Void = { event in events.withLock { $0.append(event) } }
        let failure = FirstFailure()
        let untilStopped: @Sendable (String) -> @Sendable (@escaping @Sendable () -> Bool) async throws -> Void = { name in
            { shouldStop in
                while !shouldStop() { try? await Task.sleep(for: .milliseconds(1)) }
                note(name)
            }
        }
        let services: [any Service] = [
            RunService.polling("first", failure: failure, untilStopped("first stopped")),
            RunService.polling("early", failure: failure) { _ in note("early done") },
            RunService.atStop("marker", failure: failure) { note("marker") },
            RunService.together("pair", [("pair 0", untilStopped("pair 0 stopped")), ("pair 1", { _ in throw Boom() })], failure: failure),
        ]
        let watch = EndingWatch("watch") { () async -> Int in
            try? await Task.sleep(for: .milliseconds(100))
            note("watch ended")
            return 7
        }
        let ending = await ServiceGroup.run(services, until: watch)
        #expect(ending == 7)
        #expect(events.withLock { $0 } == ["early done", "watch ended", "pair 0 stopped", "marker", "first stopped"])
        #expect(failure.message == "pair 1: boom")
    }
}
