import Foundation
import Synchronization

/// Once a second: samples the group (pending entries, stream length), raises `idleEntries` when some entry has
/// been pending longer than `reclaimIdle` (so consumers reclaim it), trims acknowledged entries from the
/// stream, and prints a progress line: one line rewritten in place on a terminal, plain lines otherwise,
/// nothing with `--progress none`.
public final class StatsReporter: Sendable {
    public struct Sample: Sendable {
        public var elapsed: Double
        public var processed: Int
        public var rate: Double
        public var unexpired: Int
        public var pending: Int
        public var streamLength: Int
        public var p99Milliseconds: Double
    }

    let connection: RedisConnection
    let keyspace: RunKeyspace
    let counters: RunCounters
    let latencies: LatencyRecorder
    let total: Int
    let mode: RunConfiguration.Progress
    let isTerminal: Bool
    let idleEntries: RunFlag
    let reclaimIdle: Duration
    private let state = Mutex(State())

    struct State {
        var samples: [Sample] = []
        var maxStreamLength = 0
        var lineShown = false
    }

    public init(connection: RedisConnection, keyspace: RunKeyspace, counters: RunCounters, latencies: LatencyRecorder,
                total: Int, mode: RunConfiguration.Progress, idleEntries: RunFlag, reclaimIdle: Duration) {
        self.idleEntries = idleEntries
        self.reclaimIdle = reclaimIdle
        self.connection = connection
        self.keyspace = keyspace
        self.counters = counters
        self.latencies = latencies
        self.total = total
        self.mode = mode
        self.isTerminal = isatty(STDOUT_FILENO) == 1
    }

    /// The per-second samples taken so far.
    public var samples: [Sample] { state.withLock { $0.samples } }
    /// The longest the stream was at any sample.
    public var maxStreamLength: Int { state.withLock { $0.maxStreamLength } }

    /// Samples and prints every second until cancelled.
    public func run(start: ContinuousClock.Instant) async {
        let clock = ContinuousClock()
        var tick = 1
        var lastProcessed = 0
        var lastTime = start
        while !Task.isCancelled {
            do { try await clock.sleep(until: start + .seconds(tick)) } catch { break }
            tick += 1
            let now = clock.now
            let processed = counters.finished
            let rate = Double(processed - lastProcessed) / max((now - lastTime).seconds, 1e-3)
            lastProcessed = processed
            lastTime = now
            let (pending, length) = await sampleStream()
            let sample = Sample(elapsed: (now - start).seconds, processed: processed, rate: rate, unexpired: counters.unexpired,
                                pending: pending, streamLength: length,
                                p99Milliseconds: Double(latencies.snapshot().valueAtPercentile(99)) / 1000)
            state.withLock {
                $0.samples.append(sample)
                $0.maxStreamLength = max($0.maxStreamLength, length)
            }
            show(sample)
        }
    }

    /// Ends the live line so that the final report starts on a fresh line.
    public func finishLine() {
        let shown = state.withLock { $0.lineShown }
        if shown && isTerminal && mode == .auto { print("") }
    }

    /// Pending count and stream length; flags idle entries; trims entries every consumer is done with.
    func sampleStream() async -> (pending: Int, length: Int) {
        do {
            let replies = try await connection.pipeline([
                RedisCommand("XPENDING", keyspace.stream, keyspace.group),
                RedisCommand("XINFO", "GROUPS", keyspace.stream),
                RedisCommand(["XPENDING", keyspace.stream, keyspace.group, "IDLE", String(reclaimIdle.milliseconds), "-", "+", "1"]),
            ])
            idleEntries.set(!(replies[2].array ?? []).isEmpty)
            let summary = replies[0].array ?? []
            let pending = Int(summary.first?.int ?? 0)
            let firstPending = pending > 0 ? summary.count > 1 ? summary[1].string : nil : nil
            var lastDelivered: String?
            for group in replies[1].array ?? [] {
                let fields = group.array ?? []
                var name: String?
                var delivered: String?
                var i = 0
                while i + 1 < fields.count {
                    if fields[i].string == "name" { name = fields[i + 1].string }
                    if fields[i].string == "last-delivered-id" { delivered = fields[i + 1].string }
                    i += 2
                }
                if name == keyspace.group { lastDelivered = delivered }
            }
            // Everything older than both the oldest pending entry and the group's read position is acknowledged.
            let candidates = [firstPending, lastDelivered].compactMap { $0 }.compactMap(StreamID.init)
            if let minimum = candidates.min(), minimum != StreamID.zero {
                _ = try await connection.send(RedisCommand("XTRIM", keyspace.stream, "MINID", minimum.description))
            }
            let length = Int(try await connection.send(RedisCommand("XLEN", keyspace.stream)).int ?? 0)
            return (pending, length)
        } catch {
            return (-1, -1)
        }
    }

    func show(_ sample: Sample) {
        guard mode != .none else { return }
        let percent = total > 0 ? Double(sample.processed) / Double(total) * 100 : 0
        let average = sample.elapsed > 0 ? Double(sample.processed) / sample.elapsed : 0
        let pending = sample.pending >= 0 ? Format.count(sample.pending) : "?"
        let line = "Progress: \(Format.count(sample.processed))/\(Format.count(total)) (\(String(format: "%.1f", percent))%)"
            + " | rate \(Format.count(Int(sample.rate)))/s (avg \(Format.count(Int(average)))/s)"
            + " | unexpired \(Format.count(sample.unexpired)) (max \(Format.count(counters.maxUnexpired.load(ordering: .relaxed))))"
            + " | pending \(pending) | stream \(sample.streamLength >= 0 ? Format.count(sample.streamLength) : "?")"
            + " | p99 \(Format.milliseconds(sample.p99Milliseconds))"
        if mode == .auto && isTerminal {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[2K" + line).utf8))
            state.withLock { $0.lineShown = true }
        } else {
            print(line)
            fflush(nil)
        }
    }
}

/// A stream entry id, `ms-seq`, ordered as Redis orders them.
struct StreamID: Comparable, CustomStringConvertible {
    let milliseconds: UInt64
    let sequence: UInt64
    static let zero = StreamID(milliseconds: 0, sequence: 0)

    init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    init?(_ text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let ms = UInt64(parts[0]), let seq = UInt64(parts[1]) else { return nil }
        self.init(milliseconds: ms, sequence: seq)
    }

    var description: String { "\(milliseconds)-\(sequence)" }

    static func < (a: StreamID, b: StreamID) -> Bool {
        (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
    }
}
