import ArgumentParser
import ExpiryBenchCore
import ExpiryPipeline
import Logging

/// The `expiry-bench` command: `run` (the default) drives a benchmark; more subcommands come with later features.
struct ExpiryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expiry-bench",
        abstract: "Load-test Redis key expirations → keyspace notifications → a stream → a consumer group, and verify each key is processed exactly once.",
        discussion: "The run's options: expiry-bench run --help. Durations take a unit: 500us, 250ms, 2s, 1m, 1h.\n\nExit codes: 0 verified exactly-once; 1 verification failed; 64 bad usage; 69 Redis unreachable; 77 authentication refused; 78 the server's configuration makes the run impossible; 99 the run verified but a --threshold failed (or --abort-on-fail stopped it); 130 interrupted.",
        subcommands: [RunCommand.self, ProbeCommand.self, CapacityCommand.self, InspectCommand.self, CleanupCommand.self],
        defaultSubcommand: RunCommand.self
    )
}

/// A `--ttl`-style duration argument: `250ms`, `2s`, `1m`.
struct DurationArgument: ExpressibleByArgument, Sendable {
    let duration: Duration

    init?(argument: String) {
        guard let duration = DurationText.parse(argument) else { return nil }
        self.duration = duration
    }

    init(_ duration: Duration) { self.duration = duration }

    var defaultValueDescription: String { DurationText.format(duration) }

    static var defaultCompletionKind: CompletionKind { .default }
}

extension RunConfiguration.Progress: ExpressibleByArgument {}

/// A flag's value that is one of an enumeration's cases, named by its raw value in any letter case
/// (`--log-level`, `--role`).
struct CaseArgument<Value: RawRepresentable & CaseIterable & Sendable>: ExpressibleByArgument, Sendable where Value.RawValue == String {
    let value: Value

    init(_ value: Value) { self.value = value }

    init?(argument: String) {
        guard let value = Value(rawValue: argument.lowercased()) else { return nil }
        self.value = value
    }

    var defaultValueDescription: String { value.rawValue }
    static var allValueStrings: [String] { Value.allCases.map(\.rawValue) }
}

/// A `--log-level` value.
typealias LogLevelArgument = CaseArgument<Logger.Level>

/// Sends swift-log's records to stderr, one line each, at the chosen level.
enum LogSetup {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { _ in OneLineLogHandler(level: level) }
    }
}
