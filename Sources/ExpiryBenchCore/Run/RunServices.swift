import ServiceLifecycle
import Synchronization
import ExpiryPipeline
import RedisClient

/// A component of a run as a service of the run's `ServiceGroup`: it runs until the group stops it gracefully,
/// records its error (if any) as the run's first failure instead of throwing, and, when its work is done early
/// (a generator with all its keys written), waits for the stop: in a group, a service that returns ends the group.
///
/// The components stop in one of three ways, each behind the same graceful stop: they poll a flag between two
/// batches (`polling`), they are cancelled (`cancelled`: samplers and trimmers, whose work in hand may be dropped),
/// or they have a stop of their own (`stopping`: the bridge's subscriptions).
struct RunService: Service, CustomStringConvertible {
    let description: String
    private let failure: FirstFailure
    private let body: @Sendable () async throws -> Void
    private let stop: @Sendable () -> Void

    private init(_ name: String, failure: FirstFailure, body: @escaping @Sendable () async throws -> Void, stop: @escaping @Sendable () -> Void) {
        self.description = name
        self.failure = failure
        self.body = body
        self.stop = stop
    }

    /// A component that checks `shouldStop` between batches and returns once the work in hand is settled.
    static func polling(_ name: String, failure: FirstFailure,
                        _ body: @escaping @Sendable (_ shouldStop: @escaping @Sendable () -> Bool) async throws -> Void) -> RunService {
        together(name, [(name, body)], failure: failure)
    }

    /// Components of one kind (a shard's generator each, a shard's sweeper each) as one service: they start
    /// together and are told to stop together, so that stopping them does not take one's stop after another's.
    /// Each one's error is recorded under its own name.
    static func together(_ name: String, _ parts: [(name: String, body: @Sendable (_ shouldStop: @escaping @Sendable () -> Bool) async throws -> Void)],
                         failure: FirstFailure) -> RunService {
        let stopping = RunFlag()
        return RunService(name, failure: failure, body: {
            await withTaskGroup(of: Void.self) { group in
                for part in parts {
                    group.addTask {
                        do { try await part.body({ stopping.isSet }) } catch { failure.record(part.name, error) }
                    }
                }
            }
        }, stop: { stopping.set() })
    }

    /// A component that runs until its task is cancelled.
    static func cancelled(_ name: String, failure: FirstFailure, _ body: @escaping @Sendable () async -> Void) -> RunService {
        RunService(name, failure: failure, body: { await cancelWhenGracefulShutdown { await body() } }, stop: {})
    }

    /// A component with a stop of its own, which makes `run` return.
    static func stopping(_ name: String, failure: FirstFailure, run: @escaping @Sendable () async throws -> Void,
                         stop: @escaping @Sendable () -> Void) -> RunService {
        RunService(name, failure: failure, body: run, stop: stop)
    }

    /// Work done when the group stops this service, in its place in the order (the run's end marker); not done
    /// when the group is cancelled instead.
    static func atStop(_ name: String, failure: FirstFailure, _ work: @escaping @Sendable () async -> Void) -> RunService {
        RunService(name, failure: failure, body: {
            do { try await gracefulShutdown() } catch { return }
            await work()
        }, stop: {})
    }

    /// Runs the component until the group stops it (or the group's task is cancelled: then it stops at once).
    func run() async throws {
        do {
            try await withTaskCancellationOrGracefulShutdownHandler { try await body() } onCancelOrGracefulShutdown: { stop() }
        } catch {
            failure.record(description, error)
        }
        try? await gracefulShutdown()
    }
}

/// The consumers of this process as one service: they start together, stop together (each settles its batch in
/// hand), and chaos's replacements join while the run goes. One service rather than one each: a group stops its
/// services one after the other, which for 64 consumers would be 64 batches in a row.
final class ConsumerPool: Service, Sendable, CustomStringConvertible {
    var description: String { "consumers" }
    private let consumers: [StreamConsumer]
    private let make: @Sendable (ConsumerStats) async throws -> StreamConsumer
    private let failure: FirstFailure
    private let stopping = RunFlag()
    private let additions: AsyncStream<ConsumerStats>
    private let continuation: AsyncStream<ConsumerStats>.Continuation

    /// - Parameter make: connects a replacement consumer (chaos).
    init(_ consumers: [StreamConsumer], failure: FirstFailure, make: @escaping @Sendable (ConsumerStats) async throws -> StreamConsumer) {
        self.consumers = consumers
        self.failure = failure
        self.make = make
        (additions, continuation) = AsyncStream.makeStream()
    }

    /// Starts a consumer for `stats` (a replacement after a crash); ignored once the pool is stopping.
    func add(_ stats: ConsumerStats) { continuation.yield(stats) }

    func run() async throws {
        let (stopping, failure, make, continuation) = (stopping, failure, make, continuation)
        await withTaskCancellationOrGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for consumer in consumers {
                    group.addTask { await Self.consume(consumer, failure: failure, shouldStop: { stopping.isSet }) }
                }
                for await stats in additions where !stopping.isSet {
                    group.addTask {
                        do {
                            let consumer = try await make(stats)
                            await Self.consume(consumer, failure: failure, shouldStop: { stopping.isSet })
                        } catch {
                            failure.record(stats.name, error)
                        }
                    }
                }
                await group.waitForAll()
            }
        } onCancelOrGracefulShutdown: {
            stopping.set()
            continuation.finish()
        }
        try? await gracefulShutdown()
    }

    private static func consume(_ consumer: StreamConsumer, failure: FirstFailure, shouldStop: @escaping @Sendable () -> Bool) async {
        do { try await consumer.runUntilStoppedOrCrashed(shouldStop: shouldStop) } catch {
            failure.record(consumer.stats.name, error)
        }
    }
}

/// A service that decides when the run ends: it returns then, and the group stops every other service in order.
/// What it decided is read once the group is done.
final class EndingWatch<Ending: Sendable>: Service, Sendable, CustomStringConvertible {
    let description: String
    private let watch: @Sendable () async -> Ending
    private let decided = Mutex<Ending?>(nil)

    init(_ name: String, _ watch: @escaping @Sendable () async -> Ending) {
        self.description = name
        self.watch = watch
    }

    var ending: Ending? { decided.withLock { $0 } }

    func run() async throws {
        let ending = await watch()
        decided.withLock { $0 = ending }
    }
}

extension ServiceGroup {
    /// The services of a run, stopped gracefully in the reverse of the order given, once `watch` returns: so the
    /// first given stop last. No signal handling: the command line turns Ctrl-C into the run's `StopSignal`.
    static func run<Ending>(_ services: [any Service], until watch: EndingWatch<Ending>) async -> Ending? {
        var configurations = services.map {
            ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .cancelGroup, failureTerminationBehavior: .cancelGroup)
        }
        configurations.append(.init(service: watch, successTerminationBehavior: .gracefullyShutdownGroup))
        var logger = log
        logger[metadataKey: "part"] = "services"
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: configurations, logger: logger))
        do {
            try await group.run()
        } catch {
            log.error("the run's services ended abnormally: \(error)")
        }
        return watch.ending
    }
}
