import ArgumentParser
import ExpiryBenchCore
import Foundation
import ExpiryPipeline
import RedisClient

/// `expiry-bench inspect`: what a kept (or running) run holds in Redis.
struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a run's stream, group, consumers, pending entries, dead letters and due index (a run kept with --keep, or one still going)."
    )

    @OptionGroup(title: "Server") var server: ServerOptions
    @Option(help: "The namespace the run used.") var namespace: String = runDefaults.namespace
    @Option(name: .customLong("run-id"), help: "The run to show (default: the latest under the namespace).") var runID: String?
    @Flag(help: "List the runs under the namespace instead.") var list = false

    func run() async throws {
        LogSetup.bootstrap(level: .warning)
        let connection = try await server.connectWithoutSpawning()
        defer { connection.close() }
        try await exitingOnFailure(at: connection.endpoint) {
            if try await RunInspector.isClusterNode(connection) {
                throw RunError(.configuration, "inspect reads runs on a single server; \(connection.endpoint.addressDescription) is a Redis Cluster node. The run's report has its figures; remove a kept run with: \(connection.endpoint.cleanupCommand(runID: "ID", namespace: runDefaults.namespace))")
            }
            let inspector = RunInspector(connection: connection, namespace: namespace)
            let runs = try await inspector.runs()
            if list {
                if runs.isEmpty { print("No runs under '\(namespace)' at \(connection.endpoint.addressDescription).") }
                for run in runs {
                    let started = Date(timeIntervalSince1970: Double(run.startedMilliseconds) / 1000)
                    print("\(run.runID)  started \(started)")
                }
                return
            }
            guard let chosen = runID ?? runs.first?.runID else {
                throw RunError(.usage, "no runs under namespace '\(namespace)' at \(connection.endpoint.addressDescription); keep one with: expiry-bench --keep")
            }
            print(try await inspector.describe(RunKeyspace(namespace: namespace, runID: chosen)))
        }
    }
}

/// `expiry-bench cleanup`: removes one run's keys, and only those.
struct CleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Remove every key of one run (<namespace>:<run id>:*) and nothing else."
    )

    @OptionGroup(title: "Server") var server: ServerOptions
    @Option(help: "The namespace the run used.") var namespace: String = runDefaults.namespace
    @Option(name: .customLong("run-id"), help: "The run whose keys to remove (expiry-bench inspect --list shows them).") var runID: String
    @Flag(help: "Remove the run's keys even while its driver is still running (that run then fails).") var force = false

    func validate() throws {
        if runID.isEmpty || runID.contains(where: { "*?[]{} ".contains($0) }) {
            throw ValidationError("--run-id must be a run id as printed by the run (no spaces, braces or glob characters)")
        }
    }

    func run() async throws {
        LogSetup.bootstrap(level: .warning)
        let connection = try await server.connectWithoutSpawning()
        defer { connection.close() }
        try await exitingOnFailure(at: connection.endpoint) {
            // Only a prefix that holds a run: never sweep keys that merely share its shape.
            guard let removed = try await RunCleanup.removeRun(namespace: namespace, runID: runID, using: connection, timeout: server.timeout.duration,
                                                               force: force, say: { print($0) }) else {
                throw RunError(.usage, "no run '\(runID)' under namespace '\(namespace)' at \(connection.endpoint.addressDescription) (expiry-bench inspect --list shows the runs there); nothing was removed")
            }
            print("Removed \(Format.count(removed)) keys of run \(runID) under \(namespace):\(runID): at \(connection.endpoint.addressDescription).")
        }
    }
}

/// Runs `body`; a `RunError` or `RedisError` becomes one line on stderr and the documented exit code. Without
/// an `endpoint` (a run, which turns Redis failures into `RunError` itself), a `RedisError` is unexpected and
/// exits as unreachable, the closest code.
@discardableResult
func exitingOnFailure<T>(at endpoint: RedisEndpoint?, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as RunError {
        Diagnostics.fail(error.message)
        throw ExitCode(error.status.rawValue)
    } catch let error as RedisError {
        guard let endpoint else {
            Diagnostics.fail("Redis failed during the run: \(error.message)")
            throw ExitCode(ExitStatus.unavailable.rawValue)
        }
        let failure = RunError(error, endpoint: endpoint)
        Diagnostics.fail(failure.message)
        throw ExitCode(failure.status.rawValue)
    }
}

extension ServerOptions {
    /// Connects to `--redis` (never spawning a private server: there would be no run in it), or exits with the
    /// documented code and one line saying why.
    func connectWithoutSpawning() async throws -> RedisConnection {
        let resolved = try resolved()
        guard case .url(let endpoint, _) = resolved else {
            Diagnostics.fail("--redis spawn starts an empty server: give the URL of the server that holds the run")
            throw ExitCode(ExitStatus.usage.rawValue)
        }
        return try await exitingOnFailure(at: endpoint) {
            try await RedisConnection.connect(to: endpoint, name: "expiry-bench:inspect", timeout: timeout.duration)
        }
    }
}
