import Foundation

/// Parses and prints the durations of the command line: `250ms`, `2s`, `1m`, `1.5s`, `500us`, `0`.
package enum DurationText {
    /// The duration `text` denotes, or nil if it is not a duration with a unit (`us`, `ms`, `s`, `m`, `h`).
    /// A bare `0` is accepted; any other bare number is not, because its unit would be a guess.
    package static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "0" { return .zero }
        let units: [(String, Double)] = [("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            // "ms" also ends in "s": only accept a suffix whose number part is a plain number.
            guard let value = Double(number), value >= 0, value.isFinite,
                  number.allSatisfy({ $0.isNumber || $0 == "." }) else { continue }
            let nanoseconds = value * scale * 1e9
            guard nanoseconds < 1e18 else { return nil }
            return .nanoseconds(Int64(nanoseconds.rounded()))
        }
        return nil
    }

    /// A short human form: `850µs`, `5ms`, `1.5s`, `2m`.
    package static func format(_ duration: Duration) -> String {
        let seconds = duration.seconds
        if seconds == 0 { return "0" }
        if seconds < 1e-3 { return trim(seconds * 1e6) + "µs" }
        if seconds < 1 { return trim(seconds * 1e3) + "ms" }
        if seconds < 120 { return trim(seconds) + "s" }
        return trim(seconds / 60) + "m"
    }

    private static func trim(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}
