import ArgumentParser
import ExpiryBenchCore
import ExpiryPipeline
import Foundation

/// `expiry-bench run`: the benchmark itself.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Generate keys that expire, turn their expirations into stream entries, process each exactly once, and report.",
        discussion: "Durations take a unit: 500us, 250ms, 2s, 1m, 1h (or 0)."
    )

    @OptionGroup(title: "Server") var server: ServerOptions
    @OptionGroup(title: "Workload") var workload: WorkloadOptions
    @OptionGroup(title: "Reliability and faults") var reliability: ReliabilityOptions
    @OptionGroup(title: "Run") var control: RunControlOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    func validate() throws {
        let problems = try makeConfiguration().problems()
        if let first = problems.first { throw ValidationError(first) }
    }

    func makeConfiguration() throws -> RunConfiguration {
        var configuration = try RunConfiguration(server: server, workload: workload, reliability: reliability)
        control.apply(to: &configuration)
        configuration.jsonPath = output.json
        configuration.hdrIntervals = output.hdrLog != nil
        configuration.progress = output.progress
        return configuration
    }

    func run() async throws {
        var configuration = try makeConfiguration()
        LogSetup.bootstrap(level: output.logLevel.value)
        var metricsServer: MetricsServer?
        if let port = output.metricsPort {
            let metrics = RunMetrics()
            metricsServer = try await exitingOnFailure(at: nil) { try MetricsServer(host: output.metricsHost, port: port, registry: metrics.registry) }
            configuration.metrics = metrics
            print("Metrics: http://\(output.metricsHost):\(port)/metrics (Prometheus text format)")
        }
        defer { metricsServer?.stop() }
        let stop = StopSignal()
        let signals = SignalWatcher(stop: stop)
        defer { signals.cancel() }
        if configuration.role == .consumer {
            try await joinRun(configuration, stop: stop)
            return
        }
        let outcome = try await exitingOnFailure(at: nil) { try await BenchmarkRun(configuration: configuration, stop: stop).executeWithSeries() }
        let report = outcome.report
        let colour = isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        print(ReportPrinter.render(report, outcome: outcome, charts: TerminalCharts(colour: colour)))
        func text(_ contents: String) -> (String) throws -> Void {
            { path in try Data(contents.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) }
        }
        let files: [(path: String?, what: String, write: (String) throws -> Void)] = [
            (configuration.jsonPath, "JSON report", { try ReportFile.write(report, to: $0) }),
            (output.csv, "CSV series", text(SeriesFiles.csv(outcome.samples, stages: configuration.stages))),
            (output.hdrLog, "latency histogram", text(SeriesFiles.hdrLog(outcome))),
        ]
        // A file that cannot be written costs a warning, not the verdict: the others are still written.
        for file in files {
            guard let path = file.path else { continue }
            do {
                try file.write(path)
            } catch {
                Diagnostics.warn("cannot write the \(file.what) to \(path): \(error.localizedDescription)")
            }
        }
        if let cause = outcome.cause {
            Diagnostics.fail(cause.message)
            throw ExitCode(cause.status.rawValue)
        }
        let failedThresholds = (report.thresholds ?? []).filter { !$0.ok }
        for failed in failedThresholds {
            Diagnostics.fail("threshold \(failed.threshold) failed: \(ReportPrinter.describeValue(of: failed))"
                             + (failed.abortedAtSec.map { ", when --abort-on-fail stopped the run at \($0) s" } ?? ""))
        }
        let aborted = failedThresholds.contains { $0.abortedAtSec != nil }
        switch report.verdict {
        case .exactlyOnce where failedThresholds.isEmpty: return
        case .exactlyOnce: throw ExitCode(ExitStatus.thresholdFailed.rawValue)
        case .failed: throw ExitCode(ExitStatus.verificationFailed.rawValue)
        case .interrupted: throw ExitCode(aborted ? ExitStatus.thresholdFailed.rawValue : ExitStatus.interrupted.rawValue)
        }
    }

    /// `--role consumer`: joins the run, then prints what this process's consumers did. Exit 0 when the run
    /// completed, 1 when it ended otherwise, 130 when interrupted.
    func joinRun(_ configuration: RunConfiguration, stop: StopSignal) async throws {
        let outcome = try await exitingOnFailure(at: nil) { try await BenchmarkRun(configuration: configuration, stop: stop).join() }
        let total = outcome.consumers.reduce(0) { $0 + $1.processed }
        print(ReportPrinter.consumerTable(outcome.consumers).joined(separator: "\n"))
        print("This process committed \(Format.count(total)) keys in \(String(format: "%.1f", outcome.durationSec)) s"
              + (outcome.reported ? "; its figures are in the driver's report, with the verdict." : "; it could not leave its figures for the driver (the run was already removed)."))
        if outcome.interrupted {
            print("Interrupted: this process left run \(outcome.runID); its unfinished entries are taken over by the run's other consumers.")
            throw ExitCode(ExitStatus.interrupted.rawValue)
        }
        switch outcome.state {
        case .complete:
            print("Run \(outcome.runID) is complete.")
        case .stopped:
            Diagnostics.fail("run \(outcome.runID) was stopped by its driver before every key was processed; see the driver's report.")
            throw ExitCode(ExitStatus.verificationFailed.rawValue)
        case .running, nil:
            let reason = outcome.leftBecause ?? (outcome.state == nil ? "its keys were removed before it ended" : "it was still running")
            Diagnostics.fail("this process left run \(outcome.runID) before it completed: \(reason); see the driver's report.")
            throw ExitCode(ExitStatus.verificationFailed.rawValue)
        }
    }
}

extension RunConfiguration {
    /// A run's configuration from the option groups `run` and `capacity` share.
    init(server: ServerOptions, workload: WorkloadOptions, reliability: ReliabilityOptions) throws {
        self.init()
        self.server = try server.resolved()
        timeout = server.timeout.duration
        workload.apply(to: &self)
        reliability.apply(to: &self)
    }
}
