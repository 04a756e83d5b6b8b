import Foundation
import ExpiryPipeline
import Histogram

/// Writes the JSON report.
package enum ReportFile {
    /// Encodes `report` (fields named in snake_case by the encoder, sorted keys) and writes it atomically to `path`.
    package static func write(_ report: some Encodable, to path: String) throws {
        try encode(report).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    package static func encode(_ report: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(report)
    }
}

/// The per-second series (`--csv`) and the latency histogram (`--hdr-log`).
package enum SeriesFiles {
    /// One line per second: elapsed seconds, keys processed so far, rate, unexpired keys, pending entries,
    /// stream length, p99 latency so far (ms); for a staged `--rate`, also the stage being generated (from 1) and
    /// its target rate.
    package static func csv(_ samples: [StatsReporter.Sample], stages: [RateSchedule.Stage] = []) -> String {
        let schedule = stages.isEmpty ? nil : RateSchedule(stages: stages)
        var text = "elapsed_s,processed,rate_keys_per_s,unexpired,pending,stream_length,p99_ms" + (schedule == nil ? "\n" : ",stage,target_rate\n")
        for s in samples {
            text += String(format: "%.3f,%d,%.0f,%d,%d,%d,%.2f", s.elapsed, s.processed, s.rate, s.unexpired, s.pending, s.streamLength, s.p99Milliseconds)
            if let schedule {
                let stage = schedule.stage(at: s.elapsed)
                text += ",\(stage + 1),\(schedule.stages[stage].rate)"
            }
            text += "\n"
        }
        return text
    }

    /// The latency histogram in HdrHistogram's interval log format (`.hlog`): one interval per second of the run
    /// when they were kept, else one interval for the whole run.
    package static func hdrLog(_ outcome: RunOutcome) -> String {
        if !outcome.hdrIntervals.isEmpty { return HdrLog.header(startTime: outcome.startedAt) + outcome.hdrIntervals.joined() }
        return HdrLog.log(outcome.latencies, startTime: outcome.startedAt, length: outcome.report.durationSec,
                          highestTrackableValue: LatencyRecorder.highestTrackableValue)
    }
}
