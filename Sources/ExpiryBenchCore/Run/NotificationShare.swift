import ExpiryPipeline
import RedisClient

/// The record, kept in Redis, of the runs that need expired-key events on one server, so that runs sharing a
/// server share `notify-keyspace-events` instead of switching it off under each other.
///
/// The record is a hash: `original` (the value found by the first run that needed the flags), `applied` (the
/// value the runs set) and one field per run, `run:<namespace>:<run id>`, holding the run's last beat on the
/// server clock, renewed every second while the run lives. The setting goes back to `original` only when the
/// last live run leaves; a run killed outright stops counting once its beat is `RunMeta.driverSilence` old.
///
/// CONFIG cannot run inside a script, so every change is a WATCH/MULTI/EXEC transaction on the record: the
/// record and the setting change together or not at all, and a change by another run in between makes it retry.
/// The record lives in database 0 (the setting is the server's, whatever database a run uses); on a cluster
/// node under a hash tag of a slot that node owns. It is the tool's only key outside a run's prefix, and it is
/// removed when the last run leaves.
package final class NotificationShare: Sendable {
    /// The record's key on this server.
    package let key: String
    /// This run's field in the record.
    package let member: String
    let connection: RedisConnection
    private let beat: Task<Void, Never>

    private init(key: String, member: String, connection: RedisConnection) {
        self.key = key
        self.member = member
        self.connection = connection
        self.beat = Task { [connection] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                guard let now = try? await ServerClock.nowMilliseconds(connection) else { continue }
                _ = try? await connection.send(RedisCommand("HSET", key, member, String(now)))
            }
        }
    }

    /// The record's key on a single server.
    package static let standaloneKey = "expiry-bench:notify-keyspace-events"

    /// The record's key on cluster node `node`: the standalone name with the first hash tag `{<n>}` whose slot
    /// `owner` places on that node (the same for every run that sees the same slot map).
    package static func clusterKey(for node: RedisEndpoint, owner: (Int) -> RedisEndpoint) -> String {
        for n in 0..<100_000 {
            let key = "\(standaloneKey){\(n)}"
            if owner(HashSlot.of(key)).address == node.address { return key }
        }
        return standaloneKey
    }

    /// The field of run `namespace`/`runID` in the record.
    package static func member(namespace: String, runID: String) -> String { "run:\(namespace):\(runID)" }

    /// What a run found and did when it joined the record.
    package struct Joined: Sendable {
        package let share: NotificationShare
        /// The value to put back when the last run leaves.
        package let original: String
        /// The value in force for the run.
        package let value: String
        /// Whether this run had to add flags.
        package let changed: Bool
        /// Other live runs already in the record.
        package let others: Int
    }

    /// Registers run `member` on the server at `endpoint` (its database is ignored: the record is in database 0)
    /// and adds the expired-event flags the setting lacks, atomically with the record. Keeps beating until `leave`.
    /// - Throws: `RedisError(.server)` when the record cannot be written (an ACL without that key, for example).
    package static func join(endpoint: RedisEndpoint, key: String, member: String, timeout: Duration) async throws -> Joined {
        var zero = endpoint
        zero.database = 0
        let connection = try await RedisConnection.connect(to: zero, name: "expiry-bench:notify-record", timeout: timeout)
        do {
            for _ in 0..<50 {
                let reconnects = connection.reconnectCount
                let record = try await Record.read(key, on: connection)
                let others = record.liveMembers(excluding: member)
                // A killed run's change still in force (nothing changed it since) keeps the value it recorded.
                let inherited = record.applied.map { sameFlags($0, record.current) } == true ? record.original : nil
                let original = others.isEmpty ? inherited ?? record.current : record.original ?? record.current
                let missing = NotificationSettings.missingFlags(in: record.current)
                let value = record.current + missing
                var commands = record.staleMembers(excluding: member).map { RedisCommand("HDEL", key, $0) }
                commands.append(RedisCommand("HSET", key, "original", original, "applied", value, member, String(record.now)))
                if !missing.isEmpty { commands.append(RedisCommand("CONFIG", "SET", "notify-keyspace-events", value)) }
                if try await commit(commands, on: connection, reconnectsSinceWatch: reconnects) {
                    let share = NotificationShare(key: key, member: member, connection: connection)
                    return Joined(share: share, original: original, value: value, changed: !missing.isEmpty, others: others.count)
                }
            }
            throw RedisError(.server, "the record \(key) kept changing under 50 attempts to join it")
        } catch {
            connection.close()
            throw error
        }
    }

    /// What became of the setting when a run left the record.
    package enum Departure: Sendable, Equatable {
        /// The last run left: the setting was put back to this value.
        case restored(String)
        /// The last run left and the setting already had the value to put back.
        case unchanged(String)
        /// Other live runs still use the setting: it stays at this value.
        case kept(String, others: Int)
        /// The setting is not what the runs set (someone changed it since): left as it is.
        case changedElsewhere(String)
        /// The server has no record (it lost its data): nothing was known to put back.
        case noRecord(String)
    }

    /// Takes this run out of the record, and puts the setting back if it was the last live run.
    /// `fallback` (the values this run saw itself) decides when the server lost the record.
    package func leave(fallback: (original: String, applied: String)? = nil) async throws -> Departure {
        beat.cancel()
        return try await Self.leave(member: member, key: key, on: connection, fallback: fallback)
    }

    /// Closes the record's connection (after `leave`).
    package func close() {
        beat.cancel()
        connection.close()
    }

    /// Takes `member` out of the record `key` on the server `connection` talks to (database 0), putting the
    /// setting back when no other live run remains. Used by a run that ends and by `cleanup` of a killed run.
    package static func leave(member: String, key: String, on connection: RedisConnection,
                             fallback: (original: String, applied: String)? = nil) async throws -> Departure {
        for _ in 0..<50 {
            let reconnects = connection.reconnectCount
            let record = try await Record.read(key, on: connection)
            let others = record.liveMembers(excluding: member)
            if !others.isEmpty {
                let leaving = [member] + record.staleMembers(excluding: member)
                if try await commit([RedisCommand(["HDEL", key] + leaving)], on: connection, reconnectsSinceWatch: reconnects) {
                    return .kept(record.current, others: others.count)
                }
                continue
            }
            guard let original = record.original ?? fallback?.original, let applied = record.applied ?? fallback?.applied else {
                if try await commit([RedisCommand("DEL", key)], on: connection, reconnectsSinceWatch: reconnects) { return .noRecord(record.current) }
                continue
            }
            let departure = Self.departure(current: record.current, original: original, applied: applied)
            var commands = [RedisCommand("DEL", key)]
            if case .restored = departure { commands.append(RedisCommand("CONFIG", "SET", "notify-keyspace-events", original)) }
            if try await commit(commands, on: connection, reconnectsSinceWatch: reconnects) { return departure }
        }
        throw RedisError(.server, "the record \(key) kept changing under 50 attempts to leave it")
    }

    /// What leaving does to the setting when no other live run needs it: put back, already back (also when it was
    /// put back while the record could not be written), or changed by someone else and left alone.
    static func departure(current: String, original: String, applied: String) -> Departure {
        if sameFlags(current, applied) { return sameFlags(original, applied) ? .unchanged(original) : .restored(original) }
        return sameFlags(current, original) ? .unchanged(original) : .changedElsewhere(current)
    }

    /// `leave` on a server that refuses the record's transaction (`NOREPLICAS`, `MISCONF`, or `OOM`, which refuses
    /// any command queued in MULTI): CONFIG SET is not a write, so the setting still goes back when no other live
    /// run is in the record; then the record is updated without a transaction where the server allows it (a plain
    /// DEL or HDEL is not refused for memory). `recordLeft` is true when it still holds this run's field, which
    /// stops counting once its beat is `RunMeta.driverSilence` old.
    package static func leaveWithoutTransaction(member: String, key: String, on connection: RedisConnection,
                                               fallback: (original: String, applied: String)? = nil) async throws -> (departure: Departure, recordLeft: Bool) {
        let record = try await Record.read(key, on: connection)
        _ = try? await connection.send(RedisCommand("UNWATCH"))
        let others = record.liveMembers(excluding: member)
        let removal = others.isEmpty ? RedisCommand("DEL", key) : RedisCommand("HDEL", key, member)
        var departure = Departure.kept(record.current, others: others.count)
        if others.isEmpty {
            guard let original = record.original ?? fallback?.original, let applied = record.applied ?? fallback?.applied else {
                return (.noRecord(record.current), (try? await connection.send(removal)) == nil)
            }
            departure = Self.departure(current: record.current, original: original, applied: applied)
            if case .restored = departure { try await connection.send(RedisCommand("CONFIG", "SET", "notify-keyspace-events", original)) }
        }
        return (departure, (try? await connection.send(removal)) == nil)
    }

    /// `leave` for a run that cannot leave itself (killed), from a fresh connection to `endpoint`'s database 0.
    /// Returns nil when the server has no record.
    package static func leave(member: String, key: String, endpoint: RedisEndpoint, timeout: Duration) async throws -> Departure? {
        var zero = endpoint
        zero.database = 0
        let connection = try await RedisConnection.connect(to: zero, name: "expiry-bench:notify-record", timeout: timeout)
        defer { connection.close() }
        guard try await connection.send(RedisCommand("EXISTS", key)).int == 1 else { return nil }
        return try await leave(member: member, key: key, on: connection)
    }

    /// Whether two values of the setting hold the same flags (the server reorders them: 'Ex' reads back as 'xE').
    static func sameFlags(_ one: String, _ other: String) -> Bool { Set(one) == Set(other) }

    /// Runs `commands` in MULTI/EXEC after a WATCH of the record. False when the record changed since the WATCH
    /// (EXEC answers nil) or the connection was reopened since (the WATCH is gone): the caller reads again.
    static func commit(_ commands: [RedisCommand], on connection: RedisConnection, reconnectsSinceWatch: Int) async throws -> Bool {
        guard connection.reconnectCount == reconnectsSinceWatch else { return false }
        let replies = try await connection.pipeline([RedisCommand("MULTI")] + commands + [RedisCommand("EXEC")])
        guard let exec = replies.last else { return false }
        if exec.isNull { return false }
        // A command refused when queued (NOPERM on the record's key) aborts the transaction: report that one.
        for (reply, command) in zip(replies.dropFirst().dropLast(), commands) { _ = try reply.unwrapped(for: command.name) }
        guard let results = try exec.unwrapped(for: "EXEC").array else { throw RedisError(.protocolViolation, "EXEC returned \(exec)") }
        for (reply, command) in zip(results, commands) { _ = try reply.unwrapped(for: command.name) }
        return true
    }
}

extension NotificationShare {
    /// The record as read under WATCH, with the setting and the server clock at that moment.
    struct Record {
        var original: String?
        var applied: String?
        /// Each run's last beat (server milliseconds).
        var beats: [String: Int64] = [:]
        var current: String
        var now: Int64

        /// WATCHes the record, then reads it, the setting and the server clock in one round trip.
        static func read(_ key: String, on connection: RedisConnection) async throws -> Record {
            let replies = try await connection.pipeline([
                RedisCommand("WATCH", key), RedisCommand("HGETALL", key),
                RedisCommand("CONFIG", "GET", "notify-keyspace-events"), RedisCommand("TIME"),
            ])
            guard replies.count == 4 else { throw RedisError(.protocolViolation, "WATCH/HGETALL/CONFIG/TIME returned \(replies)") }
            _ = try replies[0].unwrapped(for: "WATCH")
            let fields = try replies[1].unwrapped(for: "HGETALL").fieldMap
            guard let current = try replies[2].unwrapped(for: "CONFIG").fieldMap["notify-keyspace-events"],
                  let now = ServerClock.milliseconds(fromTime: try replies[3].unwrapped(for: "TIME")) else {
                throw RedisError(.protocolViolation, "CONFIG GET/TIME returned \(replies[2]), \(replies[3])")
            }
            var record = Record(current: current, now: now)
            for (name, value) in fields {
                switch name {
                case "original": record.original = value
                case "applied": record.applied = value
                default: if name.hasPrefix("run:") { record.beats[name] = Int64(value) ?? 0 }
                }
            }
            return record
        }

        /// Runs other than `member` that beat within `RunMeta.driverSilence`.
        func liveMembers(excluding member: String) -> [String] {
            beats.filter { $0.key != member && now - $0.value < RunMeta.driverSilence.milliseconds }.map(\.key).sorted()
        }

        /// Runs other than `member` whose beat lapsed: killed, they no longer count.
        func staleMembers(excluding member: String) -> [String] {
            beats.filter { $0.key != member && now - $0.value >= RunMeta.driverSilence.milliseconds }.map(\.key).sorted()
        }
    }
}
