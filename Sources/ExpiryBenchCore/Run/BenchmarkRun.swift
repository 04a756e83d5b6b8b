import Foundation
import Histogram
import Synchronization
import ExpiryPipeline
import RedisClient

/// One benchmark run, start to verdict: finds or starts the server, checks it, sets up the run's namespace,
/// runs generator, bridge, consumers and reporter as children of one task group, verifies the result in
/// Redis, and cleans up after itself (the run's keys, the notification setting, a private server).
package struct BenchmarkRun: Sendable {
    package let configuration: RunConfiguration
    package let stop: StopSignal
    /// Where informational lines go (stdout in the tool, a buffer in tests).
    package let say: @Sendable (String) -> Void

    package init(configuration: RunConfiguration, stop: StopSignal = StopSignal(), say: @escaping @Sendable (String) -> Void = { print($0); fflush(nil) }) {
        self.configuration = configuration
        self.stop = stop
        self.say = say
    }

    /// Runs the benchmark and returns its report. Setup failures throw `RunError` with their exit status;
    /// failures during the run end in a report whose verdict is `failed`.
    package func execute() async throws -> RunReport {
        try await executeWithSeries().report
    }

    /// Runs the benchmark and returns its report with the per-second series and the latency histogram.
    package func executeWithSeries() async throws -> RunOutcome {
        // Every consumer holds a connection; the other components about a dozen more.
        try ResourceLimits.ensureOpenFiles(configuration.consumers * 2 + 64, consumers: configuration.consumers)
        let server = try await ServerHandle.open(configuration.server, timeout: configuration.timeout, say: say)
        do {
            let outcome = try await execute(on: server)
            await server.embedded?.stop()
            return outcome
        } catch let error as RedisError {
            // A Redis failure while setting up: the same exit codes and wording as the preflight's.
            await server.embedded?.stop()
            throw RunError(error, endpoint: server.endpoint)
        } catch {
            await server.embedded?.stop()
            throw error
        }
    }

    private func execute(on server: ServerHandle) async throws -> RunOutcome {
        let endpoint = server.endpoint
        let control = server.control
        defer { control.close() }

        let facts = try await Preflight.facts(control, endpoint: endpoint)
        try Preflight.check(facts, configuration: configuration, endpoint: endpoint, warn: { Diagnostics.warn($0) })
        let servers = try await RunServers.discover(endpoint: endpoint, control: control, clusterEnabled: facts.clusterEnabled)
        let keyspace = RunKeyspace(namespace: configuration.namespace, runID: configuration.runID ?? RunKeyspace.newRunID(), cluster: servers.cluster != nil)
        // Commands about a node (SCAN, CONFIG) go to every primary; commands on the run-level keys to their slot.
        let nodes = servers.cluster == nil ? [control] : try await servers.connectToPrimaries(name: "expiry-bench:\(keyspace.runID):admin", timeout: configuration.timeout)
        defer { if servers.cluster != nil { for node in nodes { node.close() } } }
        let runControl = servers.cluster == nil ? control
            : try await RedisConnection.connect(to: endpoint, name: "expiry-bench:\(keyspace.runID):control", timeout: configuration.timeout, route: servers.route(for: keyspace.meta))
        defer { if servers.cluster != nil { runControl.close() } }

        // The run removes everything under its prefix at the end, so it must own the prefix from the start: the
        // prefix is empty, and this driver claims the run id before it writes anything else (a driver started at
        // the same instant with the same --run-id loses the claim and touches nothing).
        for node in nodes {
            guard let existing = try await RunCleanup.firstKey(of: keyspace, on: node) else { continue }
            throw try await Self.prefixTaken(keyspace, example: existing, control: runControl)
        }
        let owner = "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UUID().uuidString.prefix(8))"
        guard try await RunMeta.claim(keyspace, owner: owner, on: runControl) else {
            throw RunError(.usage, "run id \(keyspace.runID) was just claimed by another driver started at the same moment: that run is still running. Choose another --run-id (or none: a new one is made).")
        }
        if configuration.keep, server.embedded != nil {
            Diagnostics.warn("--keep keeps nothing on a private server: it stops at exit with everything in it. Use --redis URL to keep a run.")
        }
        var notifications: [NotificationSettings] = []
        do {
            for (node, primary) in zip(nodes, servers.primaries) {
                notifications.append(try await NotificationSettings.prepare(control: node, endpoint: primary, keyspace: keyspace,
                                                                            recordKey: servers.notificationRecordKey(on: primary),
                                                                            timeout: configuration.timeout, say: say))
            }
        } catch {
            // Nothing of the run may stay: the settings already changed go back, and the claim is given up.
            for (node, settings) in zip(nodes, notifications) { _ = try? await settings.release(on: node) }
            _ = try? await runControl.send(RedisCommand("DEL", keyspace.meta))
            throw error
        }
        let describedEndpoint = server.embedded != nil ? "private redis-server \(endpoint.addressDescription)"
            : servers.cluster != nil ? "Redis Cluster at \(endpoint.description) (\(servers.primaries.count) primaries)" : endpoint.description
        say("expiry-bench: run \(keyspace.runID) on \(describedEndpoint): \(Format.count(configuration.keys)) keys, \(configuration.consumers) consumers\(configuration.role == .driver ? " in this process" : ""), ttl \(DurationText.format(configuration.ttl)), work \(DurationText.format(configuration.work)), lock \(DurationText.format(configuration.lockTTL)), batch \(configuration.effectiveBatch), concurrency \(configuration.concurrency), rate \(!configuration.stages.isEmpty ? "in stages " + configuration.stages.map(\.description).joined(separator: ",") : configuration.rate == 0 ? "max" : Format.count(configuration.rate) + "/s")")
        for (settings, primary) in zip(notifications, servers.primaries) {
            let on = servers.cluster != nil ? " on \(primary.addressDescription)" : ""
            if settings.others > 0, let value = settings.value {
                say("notify-keyspace-events is '\(value)'\(on), shared with \(settings.others) other run\(settings.others == 1 ? "" : "s") on this server; the last to end puts back '\(settings.original ?? "")'.")
            } else if let applied = settings.applied {
                say("notify-keyspace-events was '\(settings.original ?? "")'\(on): set to '\(applied)' for the run, put back when the last run using it ends.")
            }
        }

        if let embedded = server.embedded {
            EmergencyCleanup.shared.register(runID: keyspace.runID) { await embedded.stop() }
        } else {
            let undos = zip(servers.primaries, notifications).map { EmergencyCleanup.undo(endpoint: $0.0, keyspace: keyspace, notifications: $0.1, keep: configuration.keep) }
            EmergencyCleanup.shared.register(runID: keyspace.runID) { for undo in undos { await undo() } }
        }
        defer { EmergencyCleanup.shared.clear() }
        let outcome: Result<RunOutcome, Error>
        do {
            outcome = .success(try await runPipeline(servers: servers, control: runControl, nodes: nodes, keyspace: keyspace, version: facts.version, identity: facts.server,
                                                     embedded: server.embedded != nil))
        } catch {
            outcome = .failure(error)
        }
        // Clean up whatever happened: the run's keys (unless kept) and the server setting.
        // Connections idle during the run (a cluster's admin connections) may have been closed by the server's idle
        // `timeout` or by someone: each step is retried, and the retry reopens the connection. All of them share
        // a 2 s bound (each gets 200 ms at least), so a server that is gone does not hold the exit back.
        let endDeadline = ContinuousClock.now + .seconds(2)
        var endPatience: Duration { max(.milliseconds(200), endDeadline - ContinuousClock.now) }
        if !configuration.keep, server.embedded == nil {
            do { for node in nodes { _ = try await withRetries(giveUpAfter: endPatience) { try await RunCleanup.removeKeys(of: keyspace, on: node) } } }
            catch { Diagnostics.warn("could not remove the run's keys (\(error)); remove them with: expiry-bench cleanup --run-id \(keyspace.runID)") }
        } else if configuration.keep, server.embedded == nil {
            say("Kept the run's keys under \(keyspace.prefix) (--keep); remove them with: expiry-bench cleanup --run-id \(keyspace.runID)")
        }
        for (node, settings) in zip(nodes, notifications) {
            do {
                if let line = try await withRetries(giveUpAfter: endPatience, { try await settings.release(on: node) }) {
                    say(servers.cluster != nil ? "\(node.endpoint.addressDescription): \(line)" : line)
                }
            } catch {
                settings.share?.close()
                Diagnostics.warn("could not restore notify-keyspace-events to '\(settings.original ?? "")' on \(node.endpoint.addressDescription) (\(error)); set it back with: \(settings.manualRestore)")
            }
        }
        return try outcome.get()
    }
}

extension BenchmarkRun {
    /// The error for a prefix that already holds keys: a run still running, a kept run, or keys of unknown origin.
    static func prefixTaken(_ keyspace: RunKeyspace, example: String, control: RedisConnection) async throws -> RunError {
        switch try await RunMeta.liveness(keyspace, on: control) {
        case .running(let beatAgo):
            return RunError(.usage, "run \(keyspace.runID) is still running under \(keyspace.prefix) (\(RunMeta.lastBeat(beatAgo))): choose another --run-id or --namespace.")
        case .ended:
            return RunError(.usage, "a kept run \(keyspace.runID) holds keys under \(keyspace.prefix) (for example \(example)): a run only uses an empty prefix. Choose another --run-id or --namespace, or remove that kept run with: expiry-bench cleanup --namespace \(keyspace.namespace) --run-id \(keyspace.runID)")
        case .absent:
            return RunError(.usage, "keys already exist under \(keyspace.prefix) (for example \(example)): a run only uses an empty prefix. Choose another --run-id or --namespace.")
        }
    }
}

/// A run's report with what the charts and files beside it need.
package struct RunOutcome: Sendable {
    package let report: RunReport
    /// One sample per second of the run.
    package let samples: [StatsReporter.Sample]
    /// Every committed key's deadline → commit latency, in microseconds.
    package let latencies: Histogram<UInt64>
    /// When the run started, in seconds since the epoch.
    package let startedAt: Double
    /// `--hdr-log`: one interval log line per second of the run (empty unless asked for).
    package var hdrIntervals: [String] = []
}

/// The first error any child task of the run ended with.
final class FirstFailure: Sendable {
    private let first = Mutex<String?>(nil)
    func record(_ message: String) { first.withLock { if $0 == nil { $0 = message } } }
    var message: String? { first.withLock { $0 } }
}
