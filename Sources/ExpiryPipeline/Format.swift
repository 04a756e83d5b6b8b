import Foundation

/// Number formatting shared by the progress line and the final report.
package enum Format {
    /// `1234567` → `1,234,567`.
    package static func count(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return value < 0 ? "-" + out : out
    }

    /// Milliseconds with a precision that suits the size: `0.42ms`, `12.3ms`, `412ms`, `12.5s`.
    package static func milliseconds(_ value: Double) -> String {
        if value >= 9_999.5 { return String(format: "%.1fs", value / 1000) }
        if value >= 99.95 { return String(format: "%.0fms", value) }
        if value >= 9.995 { return String(format: "%.1fms", value) }
        return String(format: "%.2fms", value)
    }

    /// A share as a percentage with one decimal.
    package static func percent(_ share: Double) -> String {
        String(format: "%.1f%%", share * 100)
    }
}
