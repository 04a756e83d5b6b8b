import ArgumentParser
import ExpiryBenchCore
import ExpiryPipeline
import Foundation

/// `expiry-bench probe`: how late this server's own expired events are, with a footprint fit for production.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Measure how late this server's own `expired` events are: write a few probe keys with a short TTL, timestamp their events, remove what is left, restore the setting.",
        discussion: "Redis expires a key, and raises its event, only when a command touches it or its background cycle samples it. On a server with many keys that carry a TTL the cycle falls behind, and events come seconds late or not at all. Exit codes: 0 measured; 64 bad usage; 69 Redis unreachable; 77 authentication or a permission refused; 78 the server cannot be probed: older than Redis 6.2, a replica, a cluster node, events off and CONFIG unavailable, or its writes refused (READONLY, NOREPLICAS, OOM, MISCONF); 130 interrupted."
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
        LogSetup.bootstrap(level: .warning)
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
        let lag = report.lag
        let total = lag.count + lag.missing + lag.unresolved
        let s = report.server
        let settings = [s.describe(s.hz, as: "hz", key: "hz"), s.describe(s.activeExpireEffort, as: "active-expire-effort", key: "active_expire_effort"),
                        s.describe(s.keysWithTTL, as: "keys with a TTL", key: "keys_with_ttl")]
        let ttl = DurationText.format(.milliseconds(Int64(report.ttlMs)))
        let window = DurationText.format(.milliseconds(Int64(lag.windowMs)))
        let measured: [String]
        if lag.windowWaited {
            let share = Format.percent(Double(lag.missing) / Double(max(1, total)))
            measured = [
                "  deadline → expired event  p50 \(lag.describe(lag.p50))  p90 \(lag.describe(lag.p90))  p99 \(lag.describe(lag.p99))  max \(lag.describe(lag.max))",
                "  missing                   \(Format.count(lag.missing)) of \(Format.count(total)) (\(share)) had no event within \(window)",
            ]
        } else {
            measured = ["  deadline → expired event  " + lag.line]
        }
        return ([
            "",
            "Redis's own expiry lag at \(report.redis) (\(Format.count(total)) probe keys, ttl \(ttl))",
        ] + measured + [
            "  server                    \(s.name) \(s.version), " + settings.joined(separator: ", "),
        ]).joined(separator: "\n")
    }
}
