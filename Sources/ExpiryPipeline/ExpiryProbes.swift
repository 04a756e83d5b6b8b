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

    /// Probes not heard whose window had not passed at `serverNow` (ms, server clock): neither heard in time nor
    /// missing, since nobody waited long enough to tell.
    package func unresolved(serverNow: Int64) -> Int {
        let window = Int64(self.window.milliseconds)
        return state.withLock { $0.waiting.filter { $0.key + window >= serverNow }.values.reduce(0) { $0 + max(0, $1) } }
    }

    /// The lag percentiles over every probe written, a missing probe counting as the window (so a percentile
    /// that lands on missing probes is a lower bound, shown as such). With `serverNow`, the moment measuring
    /// ended: probes whose window had not passed by then are `unresolved`, not missing.
    package func summary(serverNow: Int64? = nil) -> ExpiryLag {
        var histogram = lags.snapshot()
        let heard = Int(histogram.totalCount)
        let unresolved = serverNow.map { self.unresolved(serverNow: $0) } ?? 0
        let missing = max(0, count - heard - unresolved)
        if missing > 0 { _ = histogram.record(UInt64(window.milliseconds * 1000), count: UInt64(missing)) }
        let summary = LatencySummary(histogram)
        return ExpiryLag(p50: summary.p50, p90: summary.p90, p99: summary.p99, max: summary.max,
                         count: heard, missing: missing, windowMs: Double(window.milliseconds), unresolved: unresolved)
    }
}

/// How late a server's own `expired` events were: percentiles in ms over every probe (a missing probe counts as
/// `windowMs`, so a percentile equal to the window is a lower bound), probes heard in time, probes missing.
/// When measuring ended before some probes' window had passed (`unresolved`), the percentiles and the missing
/// count are unknown: the late probes are exactly those not yet heard. The JSON then has them `null`.
package struct ExpiryLag: Sendable, Encodable, Equatable {
    package var p50: Double
    package var p90: Double
    package var p99: Double
    package var max: Double
    /// Probes whose event came within the window.
    package var count: Int
    /// Probes whose event never came within the window.
    package var missing: Int
    package var windowMs: Double
    /// Probes not heard whose window had not passed when measuring ended (a run that ended early).
    package var unresolved: Int

    package init(p50: Double, p90: Double, p99: Double, max: Double, count: Int, missing: Int, windowMs: Double, unresolved: Int = 0) {
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
        self.count = count
        self.missing = missing
        self.windowMs = windowMs
        self.unresolved = unresolved
    }

    /// True when every probe's window was waited (each was heard in time or is missing): the percentiles and
    /// `missing` are then measured.
    package var windowWaited: Bool { unresolved == 0 }
    /// True when there are percentiles to show: the window was waited, and there were probes.
    package var isKnown: Bool { windowWaited && count + missing > 0 }

    fileprivate enum CodingKeys: String, CodingKey { case p50, p90, p99, max, count, missing, windowMs, unresolved }

    /// `null` for what is unknown (see `isKnown`, `windowWaited`), never a stand-in.
    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try encodePercentiles(into: &container)
        try container.encode(count, forKey: .count)
        if windowWaited { try container.encode(missing, forKey: .missing) } else { try container.encodeNil(forKey: .missing) }
        try container.encode(windowMs, forKey: .windowMs)
        try container.encode(unresolved, forKey: .unresolved)
    }

    /// The four percentiles alone, `null` each when unknown: what the probe command reports as `lag_ms`.
    package struct Percentiles: Encodable {
        let lag: ExpiryLag
        package func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try lag.encodePercentiles(into: &container)
        }
    }

    package var percentiles: Percentiles { Percentiles(lag: self) }

    fileprivate func encodePercentiles(into container: inout KeyedEncodingContainer<CodingKeys>) throws {
        for (key, value) in [(CodingKeys.p50, p50), (.p90, p90), (.p99, p99), (.max, max)] {
            if isKnown { try container.encode(value, forKey: key) } else { try container.encodeNil(forKey: key) }
        }
    }

    /// One percentile for people: "≥ 10.0 s" when it lands on missing probes.
    package func describe(_ value: Double) -> String {
        (missing > 0 && value >= windowMs ? "≥ " : "") + Format.milliseconds(value)
    }

    /// "p50 53.0ms  p90 …  p99 …  max …", then how many probes and how many missing; the window is named only
    /// when it was waited, else the figures are unknown and the line says why.
    package var line: String {
        let total = count + missing + unresolved
        guard total > 0 else { return "no probes" }
        let window = DurationText.format(.milliseconds(Int64(windowMs)))
        guard windowWaited else {
            return "unknown (the run ended before the probes' \(window) window: \(Format.count(unresolved)) of \(Format.count(total)) probes neither heard nor past it; \(Format.count(count)) heard in time)"
        }
        return "p50 \(describe(p50))  p90 \(describe(p90))  p99 \(describe(p99))  max \(describe(max))"
            + "  (\(Format.count(total)) probes, \(Format.count(missing)) missing after \(window))"
    }
}
