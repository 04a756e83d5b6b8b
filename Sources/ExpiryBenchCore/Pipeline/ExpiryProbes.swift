import Synchronization

/// Redis's own expiry lag, measured with probe keys: keys that expire like the run's data keys but that nothing
/// touches, not the sweeper, not the pipeline. Each probe's `expired` event is timestamped on arrival; the lag is
/// arrival minus the key's deadline (both on the server's clock). A probe whose event has not come within
/// `window` of its deadline counts as missing.
///
/// The run writes one probe for every `ExpiryProbes.every` data keys; `expiry-bench probe` writes only probes.
public final class ExpiryProbes: Sendable {
    /// One probe per this many data keys of a run.
    public static let every = 100
    /// At most this many probes of a run wait for their event at once: where Redis's own expiry lags, probes
    /// would pile up as live TTL keys (1 % of the run) and slow the very expiry they measure.
    public static let maxInFlight = 100

    public let window: Duration
    private let written = Atomic<Int>(0)
    private let lastDeadline = Atomic<Int64>(0)
    private let late = Atomic<Int>(0)
    private let lags = LatencyRecorder()

    public init(window: Duration) { self.window = window }

    /// Notes `count` probes written, the last of them due at `deadline` (ms, server clock).
    public func wrote(_ count: Int, deadline: Int64) {
        guard count > 0 else { return }
        written.add(count, ordering: .relaxed)
        var seen = lastDeadline.load(ordering: .relaxed)
        while deadline > seen {
            let (exchanged, original) = lastDeadline.compareExchange(expected: seen, desired: deadline, ordering: .relaxed)
            if exchanged { break }
            seen = original
        }
    }

    /// Notes a probe's event, `lagMilliseconds` after its deadline.
    public func heard(lagMilliseconds: Int64) {
        if lagMilliseconds > Int64(window.milliseconds) {
            late.add(1, ordering: .relaxed)
        } else {
            lags.record(microseconds: CollectionOfOne(lagMilliseconds * 1000))
        }
    }

    /// Probes written whose event has not come yet.
    public var inFlight: Int { count - heardAtAll }

    /// Probes written so far.
    public var count: Int { written.load(ordering: .relaxed) }
    /// Probes whose event came within the window.
    public var heardInTime: Int { Int(lags.snapshot().totalCount) }
    /// Probes whose event came, in time or not.
    public var heardAtAll: Int { heardInTime + late.load(ordering: .relaxed) }

    /// True once every probe's event has come, or the window of the last probe has passed at `serverNow` (ms).
    public func settled(serverNow: Int64) -> Bool {
        heardAtAll >= count || serverNow > lastDeadline.load(ordering: .relaxed) + Int64(window.milliseconds)
    }

    /// The lag percentiles over every probe written, a missing probe counting as the window (so a percentile
    /// that lands on missing probes is a lower bound, shown as such).
    public func summary() -> ExpiryLag {
        var histogram = lags.snapshot()
        let missing = max(0, count - Int(histogram.totalCount))
        if missing > 0 { _ = histogram.record(UInt64(window.milliseconds * 1000), count: UInt64(missing)) }
        let summary = LatencySummary(histogram)
        return ExpiryLag(p50: summary.p50, p90: summary.p90, p99: summary.p99, max: summary.max,
                         count: count - missing, missing: missing, windowMs: Double(window.milliseconds))
    }
}

/// How late a server's own `expired` events were: percentiles in ms over every probe (a missing probe counts as
/// `windowMs`, so a percentile equal to the window is a lower bound), probes heard in time, probes missing.
public struct ExpiryLag: Sendable, Codable, Equatable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var max: Double
    /// Probes whose event came within the window.
    public var count: Int
    /// Probes whose event never came within the window.
    public var missing: Int
    public var windowMs: Double

    public init(p50: Double, p90: Double, p99: Double, max: Double, count: Int, missing: Int, windowMs: Double) {
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
        self.count = count
        self.missing = missing
        self.windowMs = windowMs
    }

    enum CodingKeys: String, CodingKey {
        case p50, p90, p99, max, count, missing
        case windowMs = "window_ms"
    }

    /// One percentile for people: "≥ 10.0 s" when it lands on missing probes.
    public func describe(_ value: Double) -> String {
        (missing > 0 && value >= windowMs ? "≥ " : "") + Format.milliseconds(value)
    }

    /// "p50 53.0ms  p90 …  p99 …  max …", then how many probes and how many missing.
    public var line: String {
        let total = count + missing
        guard total > 0 else { return "no probes" }
        return "p50 \(describe(p50))  p90 \(describe(p90))  p99 \(describe(p99))  max \(describe(max))"
            + "  (\(Format.count(total)) probes, \(Format.count(missing)) missing after \(DurationText.format(.milliseconds(Int64(windowMs)))))"
    }
}
