import Synchronization
import ExpiryPipeline
import RedisClient

/// Makes sure the server publishes expired-key events (`notify-keyspace-events` with `E` and `x`), adding only
/// the flags that are missing, and puts the setting back as it was with `release(on:)`: at once for a run alone,
/// or when the last run that needs it ends when runs share the server (`NotificationShare`).
package struct NotificationSettings: Sendable {
    /// The value to put back; nil if CONFIG could not be read.
    package let original: String?
    /// The value the run set, if it had to change anything.
    package let applied: String?
    /// The value in force for the run, when CONFIG could be read.
    package let value: String?
    /// The run's entry in the server's record of the runs that share the setting; nil where it could not be kept.
    package let share: NotificationShare?
    /// Other live runs that were already using the setting when this run started.
    package let others: Int

    init(original: String?, applied: String?, value: String? = nil, share: NotificationShare? = nil, others: Int = 0) {
        self.original = original
        self.applied = applied
        self.value = value ?? applied ?? original
        self.share = share
        self.others = others
    }

    /// The flags `value` lacks for expired keyevent notifications ("" when none).
    package static func missingFlags(in value: String) -> String {
        var missing = ""
        if !value.contains("E") { missing += "E" }
        if !value.contains("x") && !value.contains("A") { missing += "x" }
        return missing
    }

    /// Reads the setting and adds what is missing, for this run alone. Throws the CONFIG error if CONFIG is unavailable.
    package static func ensure(on connection: RedisConnection) async throws -> NotificationSettings {
        let value = try await current(on: connection)
        let missing = missingFlags(in: value)
        if missing.isEmpty { return NotificationSettings(original: value, applied: nil) }
        let wanted = value + missing
        try await connection.send("CONFIG", "SET", "notify-keyspace-events", wanted)
        return NotificationSettings(original: value, applied: wanted)
    }

    /// The server's `notify-keyspace-events`. Throws the CONFIG error if CONFIG is unavailable.
    static func current(on connection: RedisConnection) async throws -> String {
        let reply = try await connection.send("CONFIG", "GET", "notify-keyspace-events")
        guard let value = reply.fieldMap["notify-keyspace-events"] else {
            throw RedisError(.protocolViolation, "CONFIG GET notify-keyspace-events returned \(reply)")
        }
        return value
    }

    /// Puts the original value back, or leaves it for the other runs that still need it. Returns a line saying
    /// what became of the setting, nil when there is nothing to say. Safe to retry.
    package func release(on connection: RedisConnection) async throws -> String? {
        guard let share else {
            guard applied != nil, let original else { return nil }
            try await connection.send("CONFIG", "SET", "notify-keyspace-events", original)
            return "notify-keyspace-events put back to '\(original)'."
        }
        let departure: NotificationShare.Departure
        do {
            departure = try await share.leave(fallback: original.map { ($0, applied ?? $0) })
        } catch let error as RedisError where !error.breaksConnection && WriteRefusal.of(error) == nil {
            // The server refuses the record's key (a cluster down): CONFIG still works there, so the setting goes
            // back without it, unless someone changed it since. Refused writes have a path of their own
            // (`releaseWhileWritesRefused`), which can still remove the record where the server allows it.
            share.close()
            return try await restoreWithoutRecord(on: connection, refused: error.serverMessage ?? error.message)
        }
        share.close()
        return Self.describe(departure)
    }

    /// Puts the original value back without the shared record (which the server refused), if the setting is
    /// still what this run applied. Returns the line to say.
    private func restoreWithoutRecord(on connection: RedisConnection, refused: String) async throws -> String? {
        guard let applied, let original else { return nil }
        let now = try await Self.current(on: connection)
        guard NotificationShare.sameFlags(now, applied) else { return Self.describe(.changedElsewhere(now)) }
        try await connection.send("CONFIG", "SET", "notify-keyspace-events", original)
        return "notify-keyspace-events put back to '\(original)' (the record of the runs sharing it was refused: \(refused); a run still using this server would have to set it again)."
    }

    /// `release` on a server that refuses writes (`refusal`, as Redis gave it): the setting is put back with CONFIG
    /// SET, which is not a write, when no other live run needs it. Returns what became of it; when the record of
    /// the runs sharing it could not be updated either, `recordLeft` says so and what removes it.
    package func releaseWhileWritesRefused(on connection: RedisConnection, refusal: String, cleanup: String) async throws -> (line: String?, recordLeft: String?) {
        guard let share else { return (try await release(on: connection), nil) }
        defer { share.close() }
        let (departure, recordLeft) = try await NotificationShare.leaveWithoutTransaction(member: share.member, key: share.key, on: share.connection,
                                                                                          fallback: original.map { ($0, applied ?? $0) })
        guard recordLeft else { return (Self.describe(departure), nil) }
        return (Self.describe(departure), (Self.describe(departure) ?? "notify-keyspace-events is '\(original ?? "")', as the run found it.")
            + " The record \(share.key) of the runs sharing it could not be updated (\(refusal)): it still names this run, which no longer counts after 15 s; remove it once the server accepts writes with: \(cleanup)")
    }

    /// One line for what became of the setting when a run left the shared record; nil when nothing changed.
    package static func describe(_ departure: NotificationShare.Departure) -> String? {
        switch departure {
        case .restored(let value): return "notify-keyspace-events put back to '\(value)'."
        case .unchanged, .noRecord: return nil
        case .kept(let value, let others):
            return "notify-keyspace-events left at '\(value)': \(others) other run\(others == 1 ? "" : "s") on this server still use\(others == 1 ? "s" : "") it; the last to end puts it back."
        case .changedElsewhere(let value):
            return "notify-keyspace-events is '\(value)', not what the runs set: it was changed during the run, so it is left as it is."
        }
    }

    /// The command that puts the setting back by hand on `node`, for a warning when the release failed.
    package func manualRestore(on node: RedisEndpoint) -> String {
        node.redisCLI("CONFIG SET notify-keyspace-events '\(original ?? "")'")
    }
}

extension NotificationSettings {
    /// On a (re)connection of the subscriber: adds the expired-event flags again if the server lost them (a
    /// restarted server is back to its configuration file; a replica promoted by a failover never had them: the
    /// setting is not replicated). Where it changed the setting of a node other than those the run claimed,
    /// `changed` keeps the value to put back at the end. Best effort: where CONFIG is unavailable, the sweeper
    /// still publishes every key.
    static func reapply(on node: RedisEndpoint, _ send: (RedisCommand) throws -> RESPValue, changed: NodeSettingChanges) {
        guard let reply = try? send(RedisCommand("CONFIG", "GET", "notify-keyspace-events")),
              let value = reply.fieldMap["notify-keyspace-events"] else { return }
        let missing = missingFlags(in: value)
        if missing.isEmpty { return }
        if (try? send(RedisCommand("CONFIG", "SET", "notify-keyspace-events", value + missing))) != nil {
            changed.record(node, original: value)
        }
    }

    /// Makes sure expired-key events will arrive: through CONFIG where it is available; where it is not
    /// (managed Redis, renamed command), by a probe key that must produce an event. Throws `RunError` 78 with the
    /// exact setting to add when events are off and cannot be turned on from here.
    /// Where CONFIG works, the run joins the server's record `recordKey` of the runs sharing the setting; if the
    /// record cannot be written (an ACL that does not cover its key), the run changes the setting alone, with a warning.
    static func prepare(control: RedisConnection, endpoint: RedisEndpoint, keyspace: RunKeyspace, recordKey: String, timeout: Duration,
                        say: @Sendable (String) -> Void) async throws -> NotificationSettings {
        do {
            _ = try await current(on: control)
            do {
                let joined = try await NotificationShare.join(endpoint: endpoint, key: recordKey,
                                                              member: NotificationShare.member(namespace: keyspace.namespace, runID: keyspace.runID),
                                                              timeout: timeout)
                return NotificationSettings(original: joined.original, applied: joined.changed ? joined.value : nil, value: joined.value,
                                            share: joined.share, others: joined.others)
            } catch let error as RedisError where error.code == .server {
                Diagnostics.warn("could not record the run in \(recordKey) (\(error.serverMessage ?? error.message)): runs that share this server may switch each other's expired events off when they end.")
                return try await ensure(on: control)
            }
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

/// The nodes whose `notify-keyspace-events` the run changed on a subscriber's reconnection (a failover's new
/// primary, a restarted server), with the value each had first: put back at the end, beside the claimed ones.
package final class NodeSettingChanges: Sendable {
    private let changes = Mutex<[(node: RedisEndpoint, original: String)]>([])

    package init() {}

    func record(_ node: RedisEndpoint, original: String) {
        changes.withLock { list in
            if !list.contains(where: { $0.node.address == node.address }) { list.append((node, original)) }
        }
    }

    /// Every node changed, with its first value.
    package var all: [(node: RedisEndpoint, original: String)] { changes.withLock { $0 } }
}
