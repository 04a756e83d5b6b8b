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

extension NotificationSettings {
    /// On a (re)connection of the subscriber: adds the expired-event flags again if the server lost them
    /// (a restarted server is back to its configuration file). Best effort: where CONFIG is unavailable,
    /// the sweeper still publishes every key.
    static func reapply(_ context: HiredisContext, timeoutMilliseconds: Int) {
        guard let reply = try? context.roundTrip([RedisCommand("CONFIG", "GET", "notify-keyspace-events")], timeoutMilliseconds: timeoutMilliseconds).first,
              let pair = reply.array, pair.count == 2, let value = pair[1].string else { return }
        let missing = missingFlags(in: value)
        if missing.isEmpty { return }
        _ = try? context.roundTrip([RedisCommand("CONFIG", "SET", "notify-keyspace-events", value + missing)], timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Makes sure expired-key events will arrive: through CONFIG where it is available; where it is not
    /// (managed Redis, renamed command), by a probe key that must produce an event. Throws `RunError` 78 with the
    /// exact setting to add when events are off and cannot be turned on from here.
    static func prepare(control: RedisConnection, endpoint: RedisEndpoint, keyspace: RunKeyspace, timeout: Duration,
                        say: @Sendable (String) -> Void) async throws -> NotificationSettings {
        do {
            return try await ensure(on: control)
        } catch let error as RedisError where error.code == .server {
            // "ERR unknown command 'CONFIG', with args beginning with: ..." → the part before the arguments.
            let reason = (error.serverMessage ?? error.message).components(separatedBy: ", with args").first ?? error.message
            if try await probe(control: control, endpoint: endpoint, keyspace: keyspace, timeout: timeout) {
                say("CONFIG is not available (\(reason)); a probe key showed that expired-key events are on, so the run goes ahead.")
                return NotificationSettings(original: nil, applied: nil)
            }
            throw RunError(.configuration, "expired-key events are off at \(endpoint.addressDescription) and CONFIG is not available to turn them on (\(reason)). Set notify-keyspace-events to include Ex on the server (redis.conf: notify-keyspace-events Ex, or your provider's parameter of that name), then run again.")
        }
    }

    /// True if a key of the run that expires produces an expired event on the run's database.
    static func probe(control: RedisConnection, endpoint: RedisEndpoint, keyspace: RunKeyspace, timeout: Duration) async throws -> Bool {
        let probeKey = keyspace.prefix + "probe"
        let subscription = try await RedisSubscription<Bool>.subscribe(
            to: ExpirationBridge.channel(database: endpoint.database), endpoint: endpoint,
            name: "expiry-bench:\(keyspace.runID):probe", timeout: timeout
        ) { key in key == probeKey ? true : nil }
        defer { subscription.stop() }
        try await control.send(RedisCommand("SET", probeKey, "1", "PX", "1"))
        for _ in 0..<40 {
            try await Task.sleep(for: .milliseconds(50))
            // Touching an expired key makes Redis delete it and publish the event now.
            _ = try await control.send(RedisCommand("EXISTS", probeKey))
            if subscription.messages.count > 0 { return true }
        }
        return false
    }
}
