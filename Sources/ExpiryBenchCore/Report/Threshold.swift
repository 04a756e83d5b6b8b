import ExpiryPipeline

/// A pass/fail criterion on a run's result, as load testers write them (`--threshold 'p99<250ms'`): a metric, a
/// comparison and a limit. Latency metrics (`p50`, `p90`, `p99`, `p999`, `max`, deadline → commit) take a
/// duration; `lost`, `duplicates` and `late` take a count or a percentage of the keys generated.
package struct Threshold: Sendable, Equatable, CustomStringConvertible {
    package enum Metric: String, Sendable, CaseIterable {
        case p50, p90, p99, p999, max, lost, duplicates, late

        /// A latency percentile (a duration), rather than a count of keys.
        var isLatency: Bool { [.p50, .p90, .p99, .p999, .max].contains(self) }
    }

    package enum Comparison: String, Sendable, CaseIterable {
        // Longest first, so that "<=" is not read as "<".
        case lessOrEqual = "<=", equal = "==", less = "<"

        func holds(_ value: Double, _ limit: Double) -> Bool {
            switch self {
            case .less: return value < limit
            case .lessOrEqual: return value <= limit
            case .equal: return value == limit
            }
        }
    }

    package let metric: Metric
    package let comparison: Comparison
    /// The limit: milliseconds for a latency, keys for a count, percent of the keys generated for a percentage.
    package let limit: Double
    package let isPercent: Bool
    /// The threshold as the user wrote it (without spaces).
    package let text: String

    /// Parses `p99<250ms`, `max<=2s`, `lost==0`, `late<1%`, `duplicates==0`.
    /// - Throws: a message saying what is wrong and what is accepted.
    package init(parsing raw: String) throws(ThresholdError) {
        let text = raw.filter { !$0.isWhitespace }
        let accepted = "write METRIC<LIMIT, METRIC<=LIMIT or METRIC==LIMIT: p50, p90, p99, p999 or max with a duration (p99<250ms), lost, duplicates or late with a count or a percentage (lost==0, late<1%)"
        guard let comparison = Comparison.allCases.first(where: { text.contains($0.rawValue) }),
              let range = text.range(of: comparison.rawValue) else {
            throw ThresholdError("threshold '\(raw)' has no comparison: \(accepted)")
        }
        guard let metric = Metric(rawValue: String(text[..<range.lowerBound]).lowercased()) else {
            throw ThresholdError("threshold '\(raw)': unknown metric '\(text[..<range.lowerBound])'; \(accepted)")
        }
        let limitText = String(text[range.upperBound...])
        if metric.isLatency {
            guard let limit = DurationText.parse(limitText) else {
                throw ThresholdError("threshold '\(raw)': '\(limitText)' is not a duration (250ms, 1s); \(accepted)")
            }
            self.init(metric: metric, comparison: comparison, limit: limit.seconds * 1000, isPercent: false, text: text)
        } else {
            let isPercent = limitText.hasSuffix("%")
            guard let limit = Double(isPercent ? String(limitText.dropLast()) : limitText), limit >= 0 else {
                throw ThresholdError("threshold '\(raw)': '\(limitText)' is not a count or a percentage (0, 10, 1%); \(accepted)")
            }
            self.init(metric: metric, comparison: comparison, limit: limit, isPercent: isPercent, text: text)
        }
    }

    init(metric: Metric, comparison: Comparison, limit: Double, isPercent: Bool, text: String) {
        self.metric = metric
        self.comparison = comparison
        self.limit = limit
        self.isPercent = isPercent
        self.text = text
    }

    package var description: String { text }

    /// The metric's value in `report`, in the limit's unit; nil for a latency when nothing was committed.
    package func value(in report: RunReport) -> Double? {
        switch metric {
        case .p50, .p90, .p99, .p999, .max: return value(in: report.latencyMs)
        case .lost: return report.lost.map { share($0, of: report.keysGenerated) }
        case .duplicates: return report.unknown?["duplicate_commits"] != nil ? nil : share(report.duplicateCommits, of: report.keysGenerated)
        case .late: return share(report.lateKeys, of: report.keysGenerated)
        }
    }

    /// The value of a latency metric in a histogram summary (also for checks while the run goes); nil for the
    /// others, and when the histogram is empty.
    package func value(in latency: LatencySummary) -> Double? {
        guard latency.count > 0 else { return nil }
        switch metric {
        case .p50: return latency.p50
        case .p90: return latency.p90
        case .p99: return latency.p99
        case .p999: return latency.p999
        case .max: return latency.max
        case .lost, .duplicates, .late: return nil
        }
    }

    private func share(_ count: Int, of total: Int) -> Double {
        isPercent ? (total > 0 ? Double(count) / Double(total) * 100 : 0) : Double(count)
    }

    /// Whether `value` (from `value(in:)`) meets the threshold; a latency with no data does not.
    package func holds(_ value: Double?) -> Bool { value.map { comparison.holds($0, limit) } ?? false }

    /// `value` in the threshold's unit, for a report line: `312.4 ms`, `3 keys`, `0.12 %`.
    package func format(_ value: Double?) -> String {
        guard let value else { return "no key committed" }
        if metric.isLatency { return String(format: "%.2f ms", value) }
        if isPercent { return String(format: "%.3g %%", value) }
        return "\(Int(value)) key\(value == 1 ? "" : "s")"
    }
}

/// A threshold the user wrote that cannot be read.
package struct ThresholdError: Error, Sendable, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}

extension RunReport {
    /// One threshold's result: JSON `thresholds` [{`threshold`, `value`, `ok`}].
    package struct ThresholdResult: Sendable, Codable, Equatable {
        package var threshold: String
        /// The measured value in the threshold's unit (ms, keys or percent); absent when there was none.
        package var value: Double?
        package var ok: Bool
        /// Set when `--abort-on-fail` ended the run on this threshold: seconds into the run.
        package var abortedAtSec: Double?
    }
}

/// `--abort-on-fail`: the latency thresholds, checked against the run's histogram once a second while it goes
/// (from 100 commits on, so that the first few keys do not decide).
struct ThresholdWatch {
    /// The threshold that failed, its value then, and when.
    struct Abort: Sendable, Equatable {
        var threshold: Threshold
        var value: Double
        var atSec: Double

        var description: String { "\(threshold) failed at \(String(format: "%.1f", atSec)) s (\(threshold.metric.rawValue) \(threshold.format(value)))" }
    }

    let thresholds: [Threshold]
    let start: ContinuousClock.Instant
    private var next: ContinuousClock.Instant

    /// Nil when no threshold can be checked while the run goes (only latency ones can).
    init?(_ thresholds: [Threshold], start: ContinuousClock.Instant) {
        self.thresholds = thresholds.filter(\.metric.isLatency)
        if self.thresholds.isEmpty { return nil }
        self.start = start
        self.next = start + .seconds(1)
    }

    /// The first threshold failing now, at most once a second.
    mutating func failure(at now: ContinuousClock.Instant, latencies: LatencyRecorder) -> Abort? {
        guard now >= next else { return nil }
        next = now + .seconds(1)
        let summary = LatencySummary(latencies.snapshot())
        guard summary.count >= 100 else { return nil }
        for threshold in thresholds {
            guard let value = threshold.value(in: summary), !threshold.holds(value) else { continue }
            return Abort(threshold: threshold, value: value, atSec: (now - start).seconds)
        }
        return nil
    }
}

extension RunReport {
    /// Each threshold's result against the final report; the one `--abort-on-fail` stopped the run on failed with
    /// the value it had then. Nil (absent from the JSON) when there are none.
    static func thresholdResults(_ thresholds: [Threshold], report: RunReport, abort: ThresholdWatch.Abort?) -> [ThresholdResult]? {
        if thresholds.isEmpty { return nil }
        return thresholds.map { threshold in
            if let abort, abort.threshold == threshold {
                return ThresholdResult(threshold: threshold.text, value: abort.value, ok: false, abortedAtSec: (abort.atSec * 10).rounded() / 10)
            }
            let value = threshold.value(in: report)
            return ThresholdResult(threshold: threshold.text, value: value, ok: threshold.holds(value))
        }
    }
}
