import Foundation
import ExpiryPipeline
import Logging

/// The tool's logger. Warnings and errors go to stderr (see `OneLineLogHandler`), so stdout carries only
/// progress and the report.
package let log = Logger(label: "expiry-bench")

/// One-line messages to stderr.
package enum Diagnostics {
    /// `expiry-bench: error: <message>`, whatever the log level: the reason the process exits non-zero.
    package static func fail(_ message: String) {
        FileHandle.standardError.write(Data("expiry-bench: error: \(message)\n".utf8))
    }

    /// A warning through the logger: `expiry-bench: warning: <message>`.
    package static func warn(_ message: String) {
        log.warning("\(message)")
    }
}

/// Writes each log record as one line on stderr: `expiry-bench: <level>: <message> [key=value ...]`.
package struct OneLineLogHandler: LogHandler {
    package var logLevel: Logger.Level
    package var metadata: Logger.Metadata = [:]

    package init(level: Logger.Level) { self.logLevel = level }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        let all = metadata.merging(extra ?? [:]) { $1 }
        let suffix = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        FileHandle.standardError.write(Data("expiry-bench: \(level): \(message)\(suffix)\n".utf8))
    }
}
