import Foundation

/// Writes the JSON report.
public enum ReportFile {
    /// Encodes `report` (snake_case fields, sorted keys) and writes it atomically to `path`.
    public static func write(_ report: RunReport, to path: String) throws {
        try encode(report).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    public static func encode(_ report: RunReport) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(report)
    }
}

/// One-line messages to stderr, so that stdout carries only progress and the report.
public enum Diagnostics {
    /// `expiry-bench: error: <message>`.
    public static func fail(_ message: String) {
        FileHandle.standardError.write(Data("expiry-bench: error: \(message)\n".utf8))
    }

    /// `expiry-bench: warning: <message>`.
    public static func warn(_ message: String) {
        FileHandle.standardError.write(Data("expiry-bench: warning: \(message)\n".utf8))
    }
}
