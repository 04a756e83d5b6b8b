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

    /// Where status lines go, those that only say what the run is doing ("Writing 1,000,000 background keys ...",
    /// "waiting up to 10s for the probes ..."): `say`, or nowhere with `--progress none`. What the run changes on
    /// the server (the notification setting) is always said.
    var status: @Sendable (String) -> Void {
        if configuration.progress == .none { return { _ in } }
        return say
    }

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

    /// `--role consumer`: joins the run `--run-id` with this process's consumers (see `ConsumerProcess`).
    package func join() async throws -> JoinOutcome {
        try await ConsumerProcess(configuration: configuration, stop: stop, say: say).join()
    }

    /// Runs the benchmark and returns its report with the per-second series and the latency histogram.
    package func executeWithSeries() async throws -> RunOutcome {
        // Every consumer holds a connection; the other components about a dozen more. Over TLS a connection holds
        // three descriptors (the socket and a socket pair to hiredis) instead of one.
        let perConsumer = configuration.server.usesTLS ? 4 : 2
        try ResourceLimits.ensureOpenFiles(configuration.consumers * perConsumer + 64, consumers: configuration.consumers)
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
        // A cluster's connections spread over its primaries: there each node's refusal names the limit.
        if servers.cluster == nil { try Preflight.checkClientLimit(facts, needed: clientNeed(servers), endpoint: endpoint) }
        let keyspace = RunKeyspace(namespace: configuration.namespace, runID: configuration.runID ?? RunKeyspace.newRunID(), cluster: servers.cluster != nil)
        // Commands about a node (SCAN, CONFIG) go to every primary; commands on the run-level keys to their slot.
        let nodes = servers.cluster == nil ? [control] : try await servers.connectToPrimaries(name: "expiry-bench:\(keyspace.runID):admin", timeout: configuration.timeout)
        defer { if servers.cluster != nil { for node in nodes { node.close() } } }
        if servers.cluster != nil { try await Preflight.checkReplicas(wanted: configuration.waitReplicas, nodes: nodes) }
        if configuration.chaosFailover { try await FailoverChaos.check(servers, replicas: facts.replicas, nodes: nodes) }
        let runControl = servers.cluster == nil ? control
            : try await RedisConnection.connect(to: endpoint, name: "expiry-bench:\(keyspace.runID):control", timeout: configuration.timeout, route: servers.route(for: keyspace.meta))
        defer { if servers.cluster != nil { runControl.close() } }

        // Read before the run writes anything: what Redis evicts from here on is the run's doing, or happened under it.
        let evictionsAtStart = await Evictions.Reading.read(nodes)
        let claim = try await RunClaim.take(keyspace, configuration: configuration, servers: servers, nodes: nodes, control: runControl, embedded: server.embedded, say: say)
        say(announcement(keyspace, on: server.embedded != nil ? "private redis-server \(endpoint.addressDescription)"
                            : servers.cluster != nil ? "Redis Cluster at \(endpoint.description) (\(servers.primaries.count) primaries)" : endpoint.description))
        claim.describeNotifications()
        claim.registerEmergencyCleanup()
        let outcome: Result<RunOutcome, Error>
        do {
            outcome = .success(try await runPipeline(servers: servers, control: runControl, nodes: nodes, keyspace: keyspace, version: facts.version, identity: facts.server,
                                                     embedded: server.embedded != nil, settingChanges: claim.settingChanges, replicas: facts.replicas,
                                                     evictionsAtStart: evictionsAtStart))
        } catch {
            outcome = .failure(error)
        }
        await claim.giveBack()
        if case .failure(let error as RedisError) = outcome, error.isClientLimit {
            throw await clientLimitFailure(servers, control: control)
        }
        return try outcome.get()
    }

    /// The connections this run opens on `servers`.
    func clientNeed(_ servers: RunServers) -> RunError.ClientNeed {
        PipelineParts.connectionCount(configuration, shards: configuration.shards ?? servers.defaultShardCount, primaries: servers.primaries.count,
                                      cluster: servers.cluster != nil)
    }

    /// The line for a server that turned one of the run's connections away at its client limit, with `maxclients`
    /// read now on `control`. Called once the run's other connections are closed, so that the read (and the
    /// reconnection of `control`, if it was the one cut) is not turned away in turn.
    func clientLimitFailure(_ servers: RunServers, control: RedisConnection) async -> RunError {
        let limit = (try? await control.send(RedisCommand("CONFIG", "GET", "maxclients")))?.fieldMap["maxclients"].flatMap { Int($0) }
        return RunError(.configuration, RunError.clientLimitMessage(control.endpoint, limit: limit, needed: clientNeed(servers)))
    }

    /// The run's first line: where, and with which settings.
    private func announcement(_ keyspace: RunKeyspace, on server: String) -> String {
        let c = configuration
        let rate = !c.stages.isEmpty ? "in stages " + c.stages.map(\.description).joined(separator: ",") : c.rate == 0 ? "max" : Format.count(c.rate) + "/s"
        return "expiry-bench: run \(keyspace.runID) on \(server): \(Format.count(c.keys)) keys, \(c.consumers) consumers\(c.role == .driver ? " in this process" : ""), ttl \(DurationText.format(c.ttl)), work \(DurationText.format(c.work)), lock \(DurationText.format(c.lockTTL)), batch \(c.effectiveBatch), concurrency \(c.concurrency), rate \(rate)"
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
    /// What ended the run when it is the server's configuration, not the pattern (a client limit reached mid-run):
    /// said after the report, and the exit code.
    package var cause: RunError?
}

/// The first error any component of the run ended with, before the run's end was decided: what fails while the
/// run stops (a write whose wait for replicas the end cut short) is not a cause of the end, and Redis's figures
/// say what it left.
final class FirstFailure: Sendable {
    private let first = Mutex<(failure: (message: String, error: (any Error)?)?, closed: Bool)>((nil, false))
    private let gone = RunFlag()
    /// Keeps `error` of the component `component` if it is the first. The run's keys being gone
    /// (`RedisError.isRunGone`) is noted even after `close`: a consumer process tells a run removed under its
    /// consumers from a failure of its own by it.
    func record(_ component: String, _ error: any Error) {
        if (error as? RedisError)?.isRunGone == true { gone.set() }
        keep("\(component): \(error)", error)
    }
    func record(_ message: String) { keep(message, nil) }
    private func keep(_ message: String, _ error: (any Error)?) {
        first.withLock { if $0.failure == nil, !$0.closed { $0.failure = (message, error) } }
    }
    /// Whether a component failed because the run's keys were gone.
    var runGone: Bool { gone.isSet }
    /// Later failures are not recorded.
    func close() { first.withLock { $0.closed = true } }
    var message: String? { first.withLock { $0.failure?.message } }
    /// The first failure's error, when it was one (a server at its client limit is told apart by it).
    var error: (any Error)? { first.withLock { $0.failure?.error } }
    /// The server's refusal of a write (`NOREPLICAS …`) when that was the first failure.
    var writeRefusal: String? { error.flatMap(WriteRefusal.of) }
}
