import Foundation
import Histogram

/// Writes the JSON report.
public enum ReportFile {
    /// Encodes `report` (snake_case fields, sorted keys) and writes it atomically to `path`.
    public static func write(_ report: some Encodable, to path: String) throws {
        try encode(report).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    public static func encode(_ report: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(report)
    }
}

/// The per-second series (`--csv`) and the latency histogram (`--hdr-log`).
public enum SeriesFiles {
    /// One line per second: elapsed seconds, keys processed so far, rate, unexpired keys, pending entries,
    /// stream length, p99 latency so far (ms).
    public static func csv(_ samples: [StatsReporter.Sample]) -> String {
        var text = "elapsed_s,processed,rate_keys_per_s,unexpired,pending,stream_length,p99_ms\n"
        for s in samples {
            text += String(format: "%.3f,%d,%.0f,%d,%d,%d,%.2f\n", s.elapsed, s.processed, s.rate, s.unexpired, s.pending, s.streamLength, s.p99Milliseconds)
        }
        return text
    }

    /// The latency histogram in HdrHistogram's interval log format (`.hlog`), one interval for the run.
    public static func hdrLog(_ outcome: RunOutcome) -> String {
        HdrLog.log(outcome.latencies, startTime: outcome.startedAt, length: outcome.report.durationSec,
                   highestTrackableValue: LatencyRecorder.highestTrackableValue)
    }
}
