import Foundation
import Histogram
import Synchronization

/// One benchmark run, start to verdict: finds or starts the server, checks it, sets up the run's namespace,
/// runs generator, bridge, consumers and reporter as children of one task group, verifies the result in
/// Redis, and cleans up after itself (the run's keys, the notification setting, a private server).
public struct BenchmarkRun: Sendable {
    public let configuration: RunConfiguration
    public let stop: StopSignal
    /// Where informational lines go (stdout in the tool, a buffer in tests).
    public let say: @Sendable (String) -> Void

    public init(configuration: RunConfiguration, stop: StopSignal = StopSignal(), say: @escaping @Sendable (String) -> Void = { print($0) }) {
        self.configuration = configuration
        self.stop = stop
        self.say = say
    }

    /// Runs the benchmark and returns its report. Setup failures throw `RunError` with their exit status;
    /// failures during the run end in a report whose verdict is `failed`.
    public func execute() async throws -> RunReport {
        try await executeWithSeries().report
    }

    /// Runs the benchmark and returns its report with the per-second series and the latency histogram.
    public func executeWithSeries() async throws -> RunOutcome {
        let server = try await ServerHandle.open(configuration.server, timeout: configuration.timeout, say: say)
        defer { server.embedded?.stop() }
        let endpoint = server.endpoint
        let keyspace = RunKeyspace(namespace: configuration.namespace, runID: configuration.runID ?? RunKeyspace.newRunID())
        let control = server.control
        defer { control.close() }

        let facts = try await Preflight.facts(control, endpoint: endpoint)
        try Preflight.check(facts, configuration: configuration, endpoint: endpoint, warn: { Diagnostics.warn($0) })
        let version = facts.version
        let notifications = try await NotificationSettings.prepare(control: control, endpoint: endpoint, keyspace: keyspace,
                                                                   timeout: configuration.timeout, say: say)
        let describedEndpoint = server.embedded != nil ? "private redis-server \(endpoint.addressDescription)" : endpoint.description
        say("expiry-bench: run \(keyspace.runID) on \(describedEndpoint): \(Format.count(configuration.keys)) keys, \(configuration.consumers) consumers, ttl \(DurationText.format(configuration.ttl)), work \(DurationText.format(configuration.work)), lock \(DurationText.format(configuration.lockTTL)), batch \(configuration.effectiveBatch), concurrency \(configuration.concurrency), rate \(configuration.rate == 0 ? "max" : Format.count(configuration.rate) + "/s")")
        if let applied = notifications.applied {
            say("notify-keyspace-events was '\(notifications.original ?? "")': set to '\(applied)' for the run, restored at the end.")
        }

        let outcome: Result<RunOutcome, Error>
        do {
            outcome = .success(try await runPipeline(endpoint: endpoint, control: control, keyspace: keyspace, version: version, embedded: server.embedded != nil))
        } catch {
            outcome = .failure(error)
        }
        // Clean up whatever happened: the run's keys (unless kept) and the server setting.
        if !configuration.keep, server.embedded == nil {
            do { try await RunCleanup.removeKeys(of: keyspace, on: control) }
            catch { say("warning: could not remove the run's keys (\(error)); remove them with: expiry-bench cleanup --run-id \(keyspace.runID)") }
        } else if configuration.keep, server.embedded == nil {
            say("Kept the run's keys under \(keyspace.prefix) (--keep); remove them with: expiry-bench cleanup --run-id \(keyspace.runID)")
        }
        do { try await notifications.restore(on: control) }
        catch { say("warning: could not restore notify-keyspace-events to '\(notifications.original ?? "")': \(error)") }
        return try outcome.get()
    }

    func runPipeline(endpoint: RedisEndpoint, control: RedisConnection, keyspace: RunKeyspace, version: String, embedded: Bool) async throws -> RunOutcome {
        let configuration = self.configuration
        let counters = RunCounters()
        let latencies = LatencyRecorder()
        let scripts = try await RunScripts.load(on: control)
        try await control.send(RedisCommand(["XGROUP", "CREATE", keyspace.stream, keyspace.group, "0", "MKSTREAM"]))
        try await control.send(RedisCommand(["HSET", keyspace.meta, "keys", String(configuration.keys), "consumers", String(configuration.consumers),
                                             "ttl_ms", String(configuration.ttl.milliseconds), "started_ms", String(WallClock.milliseconds())]))

        if configuration.backgroundKeys > 0 {
            say("Writing \(Format.count(configuration.backgroundKeys)) background keys with a 1 h TTL under \(keyspace.prefix)bg: ...")
            try await BackgroundKeys.write(configuration.backgroundKeys, keyspace: keyspace, on: control)
        }
        let connections = ConnectionSet(endpoint: endpoint, runID: keyspace.runID, timeout: configuration.timeout)
        defer { connections.closeAll() }
        let publisher = try await connections.open("bridge")
        let bridge = try await ExpirationBridge.start(endpoint: endpoint, connection: publisher, script: scripts.publish,
                                                      keyspace: keyspace, counters: counters, timeout: configuration.timeout)
        defer { bridge.stop() }
        let generator = KeyGenerator(connection: try await connections.open("generator"), keyspace: keyspace,
                                     configuration: configuration, counters: counters,
                                     serverOffsetMilliseconds: try await ServerClock.offsetMilliseconds(control))
        let sweeper = configuration.sweeper
            ? DeadlineSweeper(connection: try await connections.open("sweeper"), script: scripts.sweep, keyspace: keyspace,
                              configuration: configuration, counters: counters)
            : nil
        let idleEntries = RunFlag()
        let consumerStats = (0..<configuration.consumers).map { ConsumerStats(name: "consumer-\($0)") }
        var consumers: [StreamConsumer] = []
        for stats in consumerStats {
            consumers.append(StreamConsumer(connection: try await connections.open(stats.name), scripts: scripts, keyspace: keyspace,
                                            stats: stats, counters: counters, latencies: latencies, idleEntries: idleEntries,
                                            configuration: configuration))
        }
        let trimmer = StreamTrimmer(connection: try await connections.open("trimmer"), keyspace: keyspace)
        let reporter = StatsReporter(connection: try await connections.open("reporter"), keyspace: keyspace, counters: counters,
                                     latencies: latencies, total: configuration.keys, mode: configuration.progress,
                                     idleEntries: idleEntries, reclaimIdle: configuration.reclaimIdle, trimmer: trimmer)

        let stopGenerating = RunFlag()
        let stopConsuming = RunFlag()
        let failure = FirstFailure()
        let clock = ContinuousClock()
        let start = clock.now
        var end = start
        var interrupted = false
        var stalledFor: Duration?

        await withTaskGroup(of: Void.self) { group in
            func child(_ name: String, _ body: @escaping @Sendable () async throws -> Void) {
                group.addTask {
                    do { try await body() } catch {
                        failure.record("\(name): \(error)")
                    }
                }
            }
            child("generator") { try await generator.run(shouldStop: { stopGenerating.isSet }) }
            child("bridge") { try await bridge.run() }
            if let sweeper {
                child("sweeper") { try await sweeper.run(shouldStop: { stopConsuming.isSet }) }
            }
            for consumer in consumers {
                child(consumer.stats.name) { try await consumer.run(shouldStop: { stopConsuming.isSet }) }
            }
            let reporting = Task { await reporter.run(start: start) }
            let trimming = Task { await trimmer.run() }

            // Watch: done, interrupted, failed or stalled.
            var lastProgress = start
            var lastFinished = 0
            var lastGenerated = 0
            while true {
                try? await Task.sleep(for: .milliseconds(5))
                let now = clock.now
                let finished = counters.finished
                let generated = counters.generated.load(ordering: .relaxed)
                if finished >= configuration.keys { end = now; break }
                if stop.isRequested { interrupted = true; end = now; break }
                if failure.message != nil { end = now; break }
                if finished != lastFinished || generated != lastGenerated {
                    lastProgress = now
                    lastFinished = finished
                    lastGenerated = generated
                }
                // Keys still inside their TTL are not a stall: wait for them first.
                let quietSince = lastProgress + configuration.ttl
                if now - quietSince > configuration.stallTimeout {
                    stalledFor = now - lastProgress
                    end = now
                    break
                }
            }
            stopGenerating.set()
            stopConsuming.set()
            bridge.stop()
            await group.waitForAll()
            reporting.cancel()
            trimming.cancel()
            _ = await reporting.value
            _ = await trimming.value
        }
        reporter.finishLine()

        // Verify in Redis: the processed bitmap, the due index, the group's pending entries, dead letters.
        let replies = try await control.pipeline([
            RedisCommand("BITCOUNT", keyspace.processed),
            RedisCommand("ZCARD", keyspace.dueIndex),
            RedisCommand("XPENDING", keyspace.stream, keyspace.group),
            RedisCommand("XLEN", keyspace.deadLetters),
        ])
        let values = try replies.map { try $0.unwrapped(for: "verification") }
        var verification = Verification(
            requested: configuration.keys, generated: counters.generated.load(ordering: .relaxed),
            processedBits: Int(values[0].int ?? 0), firstCommitsCounted: counters.committed.load(ordering: .relaxed),
            duplicateCommits: counters.duplicateCommits.load(ordering: .relaxed), deadLettered: Int(values[3].int ?? 0),
            pending: Int(values[2].array?.first?.int ?? 0), due: Int(values[1].int ?? 0),
            interrupted: interrupted, stalledFor: stalledFor)
        var problems = verification.problems
        if let failed = failure.message {
            problems.insert("a component failed: \(failed)", at: 0)
            verification.interrupted = false
        }

        let duration = max((end - start).seconds, 1e-6)
        let total = consumerStats.reduce(0) { $0 + $1.processed.load(ordering: .relaxed) }
        let rows = consumerStats.map { stats -> RunReport.Consumer in
            let processed = stats.processed.load(ordering: .relaxed)
            return RunReport.Consumer(name: stats.name, processed: processed, share: total > 0 ? Double(processed) / Double(total) : 0)
        }
        let verdict: RunReport.Verdict = interrupted ? .interrupted : (problems.isEmpty ? .exactlyOnce : .failed)
        let report = RunReport(
            verdict: verdict, problems: problems, runID: keyspace.runID,
            redis: embedded ? "private redis-server \(endpoint.addressDescription)" : endpoint.description, redisVersion: version,
            keysRequested: configuration.keys, keysGenerated: verification.generated, keysProcessed: verification.processedBits,
            duplicateCommits: verification.duplicateCommits, duplicateDeliveries: counters.duplicateDeliveries.load(ordering: .relaxed),
            lockSkips: counters.lockSkips.load(ordering: .relaxed), fencedCommits: counters.fencedCommits.load(ordering: .relaxed),
            lost: verification.lost, deadLettered: verification.deadLettered, pendingAtEnd: verification.pending, dueAtEnd: verification.due,
            reclaimed: counters.reclaimed.load(ordering: .relaxed),
            publishedByNotification: counters.publishedByNotification.load(ordering: .relaxed),
            publishedBySweeper: counters.publishedBySweeper.load(ordering: .relaxed),
            subscriberReconnects: bridge.reconnects, consumerErrors: counters.consumerErrors.load(ordering: .relaxed),
            generatorWaits: counters.generatorWaits.load(ordering: .relaxed),
            durationSec: (duration * 1000).rounded() / 1000,
            throughputKeysPerSec: (Double(counters.finished) / duration).rounded(),
            maxUnexpired: counters.maxUnexpired.load(ordering: .relaxed), maxStreamLength: trimmer.maxLength,
            latencyMs: LatencySummary(latencies.snapshot()), settings: configuration.reportSettings, consumers: rows)
        return RunOutcome(report: report, samples: reporter.samples, latencies: latencies.snapshot())
    }
}

/// A run's report with what the charts and files beside it need.
public struct RunOutcome: Sendable {
    public let report: RunReport
    /// One sample per second of the run.
    public let samples: [StatsReporter.Sample]
    /// Every committed key's deadline → commit latency, in microseconds.
    public let latencies: Histogram<UInt64>
}

/// A switch shared between tasks.
public final class RunFlag: Sendable {
    private let value = Atomic<Bool>(false)
    public init() {}
    public func set(_ on: Bool = true) { value.store(on, ordering: .releasing) }
    public var isSet: Bool { value.load(ordering: .acquiring) }
}

/// The first error any child task of the run ended with.
final class FirstFailure: Sendable {
    private let first = Mutex<String?>(nil)
    func record(_ message: String) { first.withLock { if $0 == nil { $0 = message } } }
    var message: String? { first.withLock { $0 } }
}

/// The connections of a run, opened by name and closed together.
final class ConnectionSet: Sendable {
    let endpoint: RedisEndpoint
    let runID: String
    let timeout: Duration
    private let opened = Mutex<[RedisConnection]>([])

    init(endpoint: RedisEndpoint, runID: String, timeout: Duration) {
        self.endpoint = endpoint
        self.runID = runID
        self.timeout = timeout
    }

    func open(_ role: String) async throws -> RedisConnection {
        let connection = try await RedisConnection.connect(to: endpoint, name: "expiry-bench:\(runID):\(role)", timeout: timeout)
        opened.withLock { $0.append(connection) }
        return connection
    }

    func closeAll() {
        for connection in opened.withLock({ $0 }) { connection.close() }
    }
}
