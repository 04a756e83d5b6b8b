import ArgumentParser
import ExpiryBenchCore
import ExpiryPipeline
import Foundation

/// `expiry-bench capacity`: the highest rate this server and these consumers sustain on time.
struct CapacityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capacity",
        abstract: "Find the highest rate that stays on time: short runs at rising rates until p99 deadline → commit passes --p99 or the backlog keeps growing, then narrow down.",
        discussion: "Each step is a whole run (generated at its rate for --step-duration, drained, verified, removed). A step holds when it verifies exactly-once, its p99 is within --p99, the generator was never held back and the keys arrived at 95 % of the rate. Exit codes: 0 a sustainable rate was found; 1 no step held; 64 bad usage; 69 Redis unreachable; 77 authentication refused; 78 the server's configuration makes a run impossible; 130 interrupted."
    )

    @OptionGroup(title: "Server") var server: ServerOptions
    @OptionGroup(title: "Workload") var workload: WorkloadOptions
    @OptionGroup(title: "Reliability and faults") var reliability: ReliabilityOptions
    @Option(help: ArgumentHelp("The p99 deadline → commit a step must stay within.", valueName: "duration"))
    var p99: DurationArgument
    @Option(name: .customLong("step-duration"), help: ArgumentHelp("How long each step generates at its rate.", valueName: "duration"))
    var stepDuration: DurationArgument = DurationArgument(.seconds(10))
    @Option(name: .customLong("start-rate"), help: "The first step's rate (keys/s); each next is ×1.5 until one fails.") var startRate: Int = 2000
    @Option(name: .customLong("max-rate"), help: "No step goes above this rate (keys/s).") var maxRate: Int = 1_000_000
    @Option(help: "Prefix of every key of the steps' runs.") var namespace: String = runDefaults.namespace
    @Option(help: ArgumentHelp("Write the result as JSON to this file.", valueName: "path")) var json: String?

    func validate() throws {
        if workload.rate != "0" || workload.duration != nil || workload.keys != nil {
            throw ValidationError("capacity chooses each step's rate and keys itself: leave out --rate, --duration and --keys (use --start-rate, --max-rate, --step-duration)")
        }
        if reliability.chaos.contains(where: { $0.faults.contains(.failover) }) {
            throw ValidationError("--chaos failover is for a run: capacity would ask for a failover at every step")
        }
        if p99.duration <= .zero { throw ValidationError("--p99 must be longer than 0") }
        if stepDuration.duration < .seconds(1) { throw ValidationError("--step-duration must be 1s or more") }
        if startRate < 1 || maxRate < startRate { throw ValidationError("--start-rate must be at least 1 and at most --max-rate") }
        try OutputOptions.checkWritable(json, flag: "--json")
        if let first = try stepConfiguration(rate: startRate).problems().first { throw ValidationError(first) }
    }

    /// One step's run: the flags given, at `rate` for `--step-duration`, quiet.
    func stepConfiguration(rate: Int) throws -> RunConfiguration {
        var configuration = try RunConfiguration(server: server, workload: workload, reliability: reliability)
        configuration.namespace = namespace
        configuration.rate = rate
        configuration.keys = max(1, Int((Double(rate) * stepDuration.duration.seconds).rounded()))
        configuration.progress = .none
        // A step that cannot keep up must end, not wait: well past its own length, it failed.
        configuration.maxDuration = stepDuration.duration * 3 + .seconds(30)
        return configuration
    }

    func run() async throws {
        LogSetup.bootstrap(level: .warning)
        let stop = StopSignal()
        let signals = SignalWatcher(stop: stop)
        defer { signals.cancel() }
        let base = try stepConfiguration(rate: startRate)
        print("expiry-bench capacity: p99 target \(DurationText.format(p99.duration)), steps of \(DurationText.format(stepDuration.duration)) from \(Format.count(startRate)) keys/s (\(base.consumers) consumers, work \(DurationText.format(base.work)), ttl \(DurationText.format(base.ttl)))")
        print(Self.header)
        let search = CapacitySearch(startRate: startRate, maxRate: maxRate)
        let result = try await exitingOnFailure(at: nil) { () async throws -> CapacitySearch.Result? in
            do {
                return try await search.run(target: p99.duration, measure: { rate in
                    if stop.isRequested { throw CapacityInterrupted() }
                    let report = try await BenchmarkRun(configuration: try stepConfiguration(rate: rate), stop: stop, say: { _ in }).execute()
                    if report.verdict == .interrupted { throw CapacityInterrupted() }
                    return CapacitySearch.judge(rate: rate, report: report, target: p99.duration)
                }, progress: { step in print(Self.row(step)); fflush(nil) })
            } catch is CapacityInterrupted {
                return nil
            }
        }
        guard let result else {
            print("Interrupted: no result.")
            throw ExitCode(ExitStatus.interrupted.rawValue)
        }
        print(Self.summary(result))
        if let json {
            do { try ReportFile.write(result, to: json) } catch {
                Diagnostics.warn("cannot write the JSON result to \(json): \(error.localizedDescription)")
            }
        }
        if result.sustainableRate == 0 { throw ExitCode(ExitStatus.verificationFailed.rawValue) }
    }

    static let header = "  rate/s   achieved/s     p50 ms     p99 ms  held"

    static func row(_ step: CapacitySearch.Step) -> String {
        "  " + Format.count(step.rate).leftPadded(to: 6, with: " ") + "  " + Format.count(Int(step.achieved)).leftPadded(to: 11, with: " ") + "  "
            + String(format: "%9.2f  %9.2f", step.p50, step.p99) + "  " + (step.ok ? "yes" : "no: \(step.reason ?? "")")
    }

    static func summary(_ result: CapacitySearch.Result) -> String {
        let target = DurationText.format(.milliseconds(Int64(result.p99TargetMs)))
        guard result.sustainableRate > 0, let best = result.steps.first(where: { $0.rate == result.sustainableRate }) else {
            return "\nNo step held: even the lowest rate tried missed p99 \(target) or failed. Lower --start-rate, or look at the steps above."
        }
        return "\nSustainable rate: \(Format.count(result.sustainableRate)) keys/s (p99 \(Format.milliseconds(best.p99)), within \(target); achieved \(Format.count(Int(best.achieved))) keys/s), after \(result.steps.count) steps.\n\n"
            + chart(result).joined(separator: "\n")
    }

    /// p99 of each step by rising rate, as bars, with the target marked `|`.
    static func chart(_ result: CapacitySearch.Result, width: Int = 50) -> [String] {
        let steps = result.steps.sorted { $0.rate < $1.rate }
        let top = max(result.p99TargetMs * 1.25, steps.map(\.p99).max() ?? 0, 1)
        let mark = Int(result.p99TargetMs / top * Double(width))
        var lines = ["  p99 deadline → commit by rate (| is the target, \(Format.milliseconds(result.p99TargetMs)))"]
        for step in steps {
            let filled = min(width, Int((step.p99 / top * Double(width)).rounded()))
            var bar = Array(String(repeating: "█", count: filled) + String(repeating: " ", count: width - filled))
            if mark < width, bar[mark] == " " { bar[mark] = "|" }
            lines.append("  " + Format.count(step.rate).leftPadded(to: 9, with: " ") + " ▕" + String(bar) + "▏ " + Format.milliseconds(step.p99))
        }
        return lines
    }
}

/// The search was interrupted (SIGINT/SIGTERM).
struct CapacityInterrupted: Error {}
