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

/// A `--log-level` value.
struct LogLevelArgument: ExpressibleByArgument, Sendable {
    let level: Logger.Level

    init(_ level: Logger.Level) { self.level = level }

    init?(argument: String) {
        guard let level = Logger.Level(rawValue: argument.lowercased()) else { return nil }
        self.level = level
    }

    var defaultValueDescription: String { level.rawValue }
    static var allValueStrings: [String] { Logger.Level.allCases.map(\.rawValue) }
}

/// Sends swift-log's records to stderr, one line each, at the chosen level.
enum LogSetup {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { _ in OneLineLogHandler(level: level) }
    }
}
