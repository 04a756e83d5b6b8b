import Foundation
import ExpiryPipeline
import Synchronization

/// Once a second: reads the groups' state (pending entries, stream lengths, from the shards' trimmers) and prints a
/// progress line: one line rewritten in place on a terminal, plain lines otherwise, nothing with `--progress none`.
package final class StatsReporter: Sendable {
    package struct Sample: Sendable {
        package var elapsed: Double
        package var processed: Int
        package var rate: Double
        package var unexpired: Int
        package var pending: Int
        package var streamLength: Int
        package var p99Milliseconds: Double
    }

    let counters: RunCounters
    let latencies: LatencyRecorder
    let total: Int
    let mode: RunConfiguration.Progress
    let isTerminal: Bool
    let trimmers: [StreamTrimmer]
    /// `--metrics-port`'s metrics, brought up to date with every sample.
    let metrics: RunMetrics?
    private let state = Mutex(State())

    struct State {
        var samples: [Sample] = []
        var hdrIntervals: [String] = []
        var lineShown = false
    }

    package init(counters: RunCounters, latencies: LatencyRecorder, total: Int, mode: RunConfiguration.Progress, trimmers: [StreamTrimmer],
                metrics: RunMetrics? = nil) {
        self.trimmers = trimmers
        self.metrics = metrics
        self.counters = counters
        self.latencies = latencies
        self.total = total
        self.mode = mode
        self.isTerminal = isatty(STDOUT_FILENO) == 1
    }

    /// The per-second samples taken so far.
    package var samples: [Sample] { state.withLock { $0.samples } }
    /// `--hdr-log`'s lines, one per second, when the latencies keep intervals.
    package var hdrIntervals: [String] { state.withLock { $0.hdrIntervals } }

    /// Samples and prints every second until cancelled.
    package func run(start: ContinuousClock.Instant) async {
        let clock = ContinuousClock()
        var tick = 1
        var lastProcessed = 0
        var lastTime = start
        defer { closeInterval(from: lastTime, to: clock.now, start: start) }
        while !Task.isCancelled {
            do { try await clock.sleep(until: start + .seconds(tick)) } catch { break }
            tick += 1
            let now = clock.now
            closeInterval(from: lastTime, to: now, start: start)
            let processed = counters.finished
            let rate = Double(processed - lastProcessed) / max((now - lastTime).seconds, 1e-3)
            lastProcessed = processed
            lastTime = now
            let pending = trimmers.reduce(0) { $0 + $1.pending }
            let length = trimmers.reduce(0) { $0 + $1.length }
            let sample = Sample(elapsed: (now - start).seconds, processed: processed, rate: rate, unexpired: counters.unexpired,
                                pending: pending, streamLength: length,
                                p99Milliseconds: Double(latencies.snapshot().valueAtPercentile(99)) / 1000)
            state.withLock {
                $0.samples.append(sample)
            }
            metrics?.update(counters: counters, sample: sample)
            show(sample)
        }
    }

    /// Encodes the latencies since the last interval as one `--hdr-log` line (kept as text: a few hundred bytes
    /// a second), when the latencies keep intervals.
    func closeInterval(from: ContinuousClock.Instant, to: ContinuousClock.Instant, start: ContinuousClock.Instant) {
        guard let interval = latencies.takeInterval() else { return }
        let line = HdrLog.line(interval, start: (from - start).seconds, length: (to - from).seconds,
                               highestTrackableValue: LatencyRecorder.highestTrackableValue)
        state.withLock { $0.hdrIntervals.append(line) }
    }

    /// Ends the live line so that the final report starts on a fresh line.
    package func finishLine() {
        let shown = state.withLock { $0.lineShown }
        if shown && isTerminal && mode == .auto { print("") }
    }

    func show(_ sample: Sample) {
        guard mode != .none else { return }
        let (done, percent) = Self.progress(sample.processed, of: total)
        let average = sample.elapsed > 0 ? Double(sample.processed) / sample.elapsed : 0
        let pending = sample.pending >= 0 ? Format.count(sample.pending) : "?"
        let line = "Progress: \(Format.count(done))/\(Format.count(total)) (\(percent)%)"
            + " | rate \(Format.count(Int(sample.rate)))/s (avg \(Format.count(Int(average)))/s)"
            + " | unexpired \(Format.count(sample.unexpired)) (max \(Format.count(counters[\.maxUnexpired])))"
            + " | pending \(pending) | stream \(sample.streamLength >= 0 ? Format.count(sample.streamLength) : "?")"
            + " | p99 \(Format.milliseconds(sample.p99Milliseconds))"
        if mode == .auto && isTerminal {
            // One line, rewritten in place: cut to the terminal's width, or it wraps and scrolls.
            let width = Self.terminalWidth()
            // Narrow terminals get a compact form that keeps every figure but the stream length.
            let compact = "\(Format.count(done))/\(Format.count(total)) \(percent)%"
                + " | \(Format.count(Int(sample.rate)))/s avg \(Format.count(Int(average)))/s"
                + " | unexp \(Format.count(sample.unexpired))"
                + " | pend \(pending) | p99 \(Format.milliseconds(sample.p99Milliseconds))"
            let fitting = line.count < width ? line : compact
            let shown = fitting.count > width - 1 ? String(fitting.prefix(max(10, width - 2))) + "…" : fitting
            FileHandle.standardOutput.write(Data(("\r\u{1B}[2K" + shown).utf8))
            state.withLock { $0.lineShown = true }
        } else {
            print(line)
            fflush(nil)
        }
    }
}

extension StatsReporter {
    /// Keys done as the progress line shows them: capped at the total (a key redone after a failover counts
    /// once more in the clients' count), and the share rounded down to a tenth of a percent, so that 100.0 %
    /// means every key is done (199,925 of 200,000 is 99.9 %).
    static func progress(_ processed: Int, of total: Int) -> (done: Int, percent: String) {
        let done = min(max(0, processed), total)
        guard total > 0 else { return (done, "0.0") }
        let tenths = done * 1000 / total
        return (done, "\(tenths / 10).\(tenths % 10)")
    }

    /// The terminal's width in columns (80 when it cannot be read).
    static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }
}
