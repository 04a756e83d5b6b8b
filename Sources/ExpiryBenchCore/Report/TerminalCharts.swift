import Histogram
import ExpiryPipeline

/// Charts for the final report, drawn with Unicode blocks on labelled axes: throughput over time (columns) and the
/// latency distribution (horizontal bars). Colour only when asked for (a terminal, and no NO_COLOR).
package struct TerminalCharts: Sendable {
    package var colour: Bool
    /// Columns available for the plot area.
    package var width: Int

    package init(colour: Bool, width: Int = 60) {
        self.colour = colour
        self.width = max(10, width)
    }

    static let eighths: [Character] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
    static let horizontalEighths: [String] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]

    /// Throughput (keys/s) per second of the run as columns 8 rows high, y axis labelled in keys/s, x axis in
    /// seconds. Longer runs are averaged into at most `width` columns.
    package func throughput(_ rates: [Double], secondsPerSample: Double = 1) -> [String] {
        guard !rates.isEmpty else { return [] }
        let perColumn = max(1, (rates.count + width - 1) / width)
        var columns: [Double] = []
        var i = 0
        while i < rates.count {
            let slice = rates[i..<min(rates.count, i + perColumn)]
            columns.append(slice.reduce(0, +) / Double(slice.count))
            i += perColumn
        }
        let top = max(columns.max() ?? 1, 1)
        let rows = 8
        let labelWidth = max(Format.count(Int(top)).count, 1)
        var lines = ["Throughput (keys/s) over time"]
        for row in (0..<rows).reversed() {
            var line = ""
            for value in columns {
                let eighthsHigh = Int((value / top * Double(rows * 8)).rounded())
                let filled = eighthsHigh - row * 8
                line.append(Self.eighths[min(8, max(0, filled))])
            }
            let label = row == rows - 1 ? Format.count(Int(top)) : row == rows / 2 - 1 ? Format.count(Int(top / 2)) : row == 0 ? "0" : ""
            lines.append(label.leftPadded(to: labelWidth, with: " ") + " ┤" + paint(line, code: "36"))
        }
        let duration = Double(rates.count) * secondsPerSample
        let axis = String(repeating: "─", count: columns.count)
        lines.append(String(repeating: " ", count: labelWidth) + " └" + axis)
        let end = "\(Int(duration.rounded()))s"
        let gap = max(1, columns.count - 1 - end.count)
        lines.append(String(repeating: " ", count: labelWidth + 2) + "0" + String(repeating: " ", count: gap) + end)
        return lines
    }

    /// The latency distribution: one bar per range of deadline → commit latency, as a share of keys.
    package func latency(_ histogram: Histogram<UInt64>) -> [String] {
        guard histogram.totalCount > 0 else { return [] }
        // Ranges in microseconds: 1-2-5 steps from 1 ms up.
        var edges: [UInt64] = [0]
        var step: UInt64 = 1000
        while step < 3_600_000_000 {
            for factor: UInt64 in [1, 2, 5] { edges.append(step * factor) }
            step *= 10
        }
        edges.append(UInt64.max)
        var buckets: [(label: String, count: UInt64)] = []
        let largest = histogram.max
        for i in 0..<(edges.count - 1) {
            let low = edges[i], high = edges[i + 1]
            if low > largest { break }
            let count = histogram.count(within: low...min(largest, high - 1))
            let label = high == UInt64.max ? "≥ \(Self.short(low))" : "\(Self.short(low))–\(Self.short(high))"
            buckets.append((label, count))
        }
        guard let first = buckets.firstIndex(where: { $0.count > 0 }), let last = buckets.lastIndex(where: { $0.count > 0 }) else { return [] }
        let shown = buckets[first...last]
        let labelWidth = shown.map(\.label.count).max() ?? 0
        let barWidth = width - 10
        let top = Double(shown.map(\.count).max() ?? 1)
        var lines = ["Latency, deadline → commit (share of keys)"]
        for bucket in shown {
            let share = Double(bucket.count) / Double(histogram.totalCount)
            let eighths = Int((Double(bucket.count) / top * Double(barWidth * 8)).rounded())
            var bar = String(repeating: "█", count: eighths / 8)
            bar += Self.horizontalEighths[eighths % 8]
            lines.append(bucket.label.leftPadded(to: labelWidth, with: " ") + " │" + paint(bar.padding(barWidth), code: "33") + " " + Format.percent(share).leftPadded(to: 6, with: " "))
        }
        return lines
    }

    static func short(_ microseconds: UInt64) -> String {
        if microseconds == 0 { return "0" }
        if microseconds < 1_000_000 { return "\(microseconds / 1000)ms" }
        return "\(microseconds / 1_000_000)s"
    }

    func paint(_ text: String, code: String) -> String {
        colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
}
