import ArgumentParser
import ExpiryBenchCore
import ExpiryPipeline
import Foundation

/// `expiry-bench probe`: how late this server's own expired events are, with a footprint fit for production.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Measure how late this server's own `expired` events are: write a few probe keys with a short TTL, timestamp their events, remove what is left, restore the setting.",
        discussion: "Redis expires a key, and raises its event, only when a command touches it or its background cycle samples it. On a server with many keys that carry a TTL the cycle falls behind, and events come seconds late or not at all. Exit codes: 0 measured; 64 bad usage; 69 Redis unreachable; 77 authentication refused; 78 events are off and cannot be turned on, or a cluster node."
    )

    @OptionGroup(title: "Server") var server: ServerOptions
    @Option(help: "Probe keys to write, spread over about a second.") var keys: Int = 1000
    @Option(help: ArgumentHelp("Time to live of each probe key.", valueName: "duration"))
    var ttl: DurationArgument = DurationArgument(.milliseconds(100))
    @Option(help: ArgumentHelp("How long past its deadline a probe's event may come before it counts as missing.", valueName: "duration"))
    var window: DurationArgument = DurationArgument(.seconds(10))
    @Option(help: "Prefix of the probe keys: <namespace>:probe-<id>:...") var namespace: String = runDefaults.namespace
    @Option(help: ArgumentHelp("Write the result as JSON to this file.", valueName: "path")) var json: String?

    var options: ExpiryProbeRun.Options {
        var options = ExpiryProbeRun.Options()
        options.keys = keys
        options.ttl = ttl.duration
        options.window = window.duration
        options.namespace = namespace
        options.timeout = server.timeout.duration
        return options
    }

    func validate() throws {
        if let first = options.problems().first { throw ValidationError(first) }
        try OutputOptions.checkWritable(json, flag: "--json")
    }

    func run() async throws {
        let stop = StopSignal()
        let signals = SignalWatcher(stop: stop)
        defer { signals.cancel() }
        let connection = try await server.connectWithoutSpawning()
        defer { connection.close() }
        let report = try await exitingOnFailure(at: connection.endpoint) {
            try await ExpiryProbeRun(options: options, stop: stop, say: { print($0); fflush(nil) }).execute(on: connection)
        }
        print(Self.render(report))
        if let json {
            do { try ReportFile.write(report, to: json) } catch {
                Diagnostics.warn("cannot write the JSON report to \(json): \(error.localizedDescription)")
            }
        }
        if stop.isRequested { throw ExitCode(ExitStatus.interrupted.rawValue) }
    }

    static func render(_ report: ExpiryProbeRun.Report) -> String {
        let total = report.count + report.missing
        let s = report.server
        var settings: [String] = []
        settings.append(s.hz.map { "hz \($0)" } ?? "hz unknown (CONFIG refused)")
        settings.append(s.activeExpireEffort.map { "active-expire-effort \($0)" } ?? "active-expire-effort unknown")
        settings.append(s.keysWithTTL.map { "\(Format.count($0)) keys with a TTL" } ?? "keys with a TTL unknown (INFO refused)")
        let lag = report.lag
        let ttl = DurationText.format(.milliseconds(Int64(report.ttlMs)))
        let window = DurationText.format(.milliseconds(Int64(report.windowMs)))
        let share = Format.percent(Double(report.missing) / Double(max(1, total)))
        let percentiles = "p50 \(lag.describe(lag.p50))  p90 \(lag.describe(lag.p90))  p99 \(lag.describe(lag.p99))  max \(lag.describe(lag.max))"
        return [
            "",
            "Redis's own expiry lag at \(report.redis) (\(Format.count(total)) probe keys, ttl \(ttl))",
            "  deadline → expired event  " + percentiles,
            "  missing                   \(Format.count(report.missing)) of \(Format.count(total)) (\(share)) had no event within \(window)",
            "  server                    \(s.name) \(s.version), " + settings.joined(separator: ", "),
        ].joined(separator: "\n")
    }
}
