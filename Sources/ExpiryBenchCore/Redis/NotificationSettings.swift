/// Makes sure the server publishes expired-key events (`notify-keyspace-events` with `E` and `x`), adding only
/// the flags that are missing, and puts the setting back as it was with `restore()`.
public struct NotificationSettings: Sendable {
    /// The value found before the run; nil if CONFIG could not be read.
    public let original: String?
    /// The value the run set, if it had to change anything.
    public let applied: String?

    /// The flags `value` lacks for expired keyevent notifications ("" when none).
    public static func missingFlags(in value: String) -> String {
        var missing = ""
        if !value.contains("E") { missing += "E" }
        if !value.contains("x") && !value.contains("A") { missing += "x" }
        return missing
    }

    /// Reads the setting and adds what is missing. Throws the CONFIG error if CONFIG is unavailable.
    public static func ensure(on connection: RedisConnection) async throws -> NotificationSettings {
        let reply = try await connection.send("CONFIG", "GET", "notify-keyspace-events")
        guard let pair = reply.array, pair.count == 2, let value = pair[1].string else {
            throw RedisError(.protocolViolation, "CONFIG GET notify-keyspace-events returned \(reply)")
        }
        let missing = missingFlags(in: value)
        if missing.isEmpty { return NotificationSettings(original: value, applied: nil) }
        let wanted = value + missing
        try await connection.send("CONFIG", "SET", "notify-keyspace-events", wanted)
        return NotificationSettings(original: value, applied: wanted)
    }

    /// Puts the original value back if the run changed it.
    public func restore(on connection: RedisConnection) async throws {
        guard applied != nil, let original else { return }
        try await connection.send("CONFIG", "SET", "notify-keyspace-events", original)
    }
}
