import Synchronization

/// Redis's own expiry lag, measured with probe keys: keys that expire like the run's data keys but that nothing
/// touches, not the sweeper, not the pipeline. Each probe's `expired` event is timestamped on arrival; the lag is
/// arrival minus the key's deadline (both on the server's clock). A probe whose event has not come within
/// `window` of its deadline counts as missing.
///
/// The run writes one probe for every `ExpiryProbes.every` data keys; `expiry-bench probe` writes only probes.
package final class ExpiryProbes: Sendable {
    /// One probe per this many data keys of a run.
    package static let every = 100
    /// At most this many probes of a run wait for their event at once: where Redis's own expiry lags, probes
    /// would pile up as live TTL keys (1 % of the run) and slow the very expiry they measure.
    package static let maxInFlight = 100

    package let window: Duration
    private struct State {
        var written = 0
        var late = 0
        var lastDeadline: Int64 = 0
        /// Probes waiting for their event, by deadline. A deadline whose window has passed is dropped: its probes
        /// are missing, and no longer hold a place among the `maxInFlight`.
        var waiting: [Int64: Int] = [:]
    }
    private let state = Mutex(State())
    private let lags = LatencyRecorder()

    package init(window: Duration) { self.window = window }

    /// Takes up to `wanted` places for probes due at `deadline` (ms, server clock), so that at most `limit` wait
    /// at `serverNow`; returns how many may be written. Shards share the places: a place is taken atomically.
    package func reserve(_ wanted: Int, deadline: Int64, serverNow: Int64, limit: Int = ExpiryProbes.maxInFlight) -> Int {
        let window = Int64(self.window.milliseconds)
        return state.withLock { state in
            state.waiting = state.waiting.filter { $0.key + window >= serverNow && $0.value > 0 }
            let waiting = state.waiting.values.reduce(0, +)
            let granted = min(wanted, max(0, limit - waiting))
            if granted > 0 {
                state.written += granted
                state.waiting[deadline, default: 0] += granted
                state.lastDeadline = max(state.lastDeadline, deadline)
            }
            return granted
        }
    }

    /// Gives back places taken by `reserve` for probes that were not written after all.
    package func cancel(_ count: Int, deadline: Int64) {
        guard count > 0 else { return }
        state.withLock { state in
            state.written -= count
            state.waiting[deadline, default: 0] -= count
        }
    }

    /// Notes `count` probes written, due at `deadline` (ms, server clock), whatever is in flight.
    package func wrote(_ count: Int, deadline: Int64) {
        _ = reserve(count, deadline: deadline, serverNow: .min, limit: .max)
    }

    /// Notes the event of a probe due at `deadline`, `lagMilliseconds` after it.
    package func heard(deadline: Int64, lagMilliseconds: Int64) {
        let late = lagMilliseconds > Int64(window.milliseconds)
        state.withLock { state in
            if let waiting = state.waiting[deadline], waiting > 0 { state.waiting[deadline] = waiting - 1 }
            if late { state.late += 1 }
        }
        if !late { lags.record(microseconds: CollectionOfOne(lagMilliseconds * 1000)) }
    }

    /// Probes written so far.
    package var count: Int { state.withLock { $0.written } }
    /// Probes whose event came within the window.
    package var heardInTime: Int { Int(lags.snapshot().totalCount) }
    /// Probes whose event came, in time or not.
    package var heardAtAll: Int { heardInTime + state.withLock { $0.late } }

    /// True once every probe's event has come, or the window of the last probe has passed at `serverNow` (ms).
    package func settled(serverNow: Int64) -> Bool {
        heardAtAll >= count || serverNow > state.withLock { $0.lastDeadline } + Int64(window.milliseconds)
    }

    /// The lag percentiles over every probe written, a missing probe counting as the window (so a percentile
    /// that lands on missing probes is a lower bound, shown as such).
    package func summary() -> ExpiryLag {
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
package struct ExpiryLag: Sendable, Codable, Equatable {
    package var p50: Double
    package var p90: Double
    package var p99: Double
    package var max: Double
    /// Probes whose event came within the window.
    package var count: Int
    /// Probes whose event never came within the window.
    package var missing: Int
    package var windowMs: Double

    package init(p50: Double, p90: Double, p99: Double, max: Double, count: Int, missing: Int, windowMs: Double) {
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
        self.count = count
        self.missing = missing
        self.windowMs = windowMs
    }

    /// The four percentiles alone: what the probe command reports as `lag_ms`, beside its counts.
    package struct Percentiles: Sendable, Codable, Equatable {
        package var p50, p90, p99, max: Double
    }

    package var percentiles: Percentiles { Percentiles(p50: p50, p90: p90, p99: p99, max: max) }

    package init(_ lag: Percentiles, count: Int, missing: Int, windowMs: Double) {
        self.init(p50: lag.p50, p90: lag.p90, p99: lag.p99, max: lag.max, count: count, missing: missing, windowMs: windowMs)
    }

    /// One percentile for people: "≥ 10.0 s" when it lands on missing probes.
    package func describe(_ value: Double) -> String {
        (missing > 0 && value >= windowMs ? "≥ " : "") + Format.milliseconds(value)
    }

    /// "p50 53.0ms  p90 …  p99 …  max …", then how many probes and how many missing.
    package var line: String {
        let total = count + missing
        guard total > 0 else { return "no probes" }
        return "p50 \(describe(p50))  p90 \(describe(p90))  p99 \(describe(p99))  max \(describe(max))"
            + "  (\(Format.count(total)) probes, \(Format.count(missing)) missing after \(DurationText.format(.milliseconds(Int64(windowMs)))))"
    }
}
