import Foundation
import ExpiryPipeline
import RedisClient

/// What a run takes on a server, and gives back at its end however it ended: its prefix (which must be empty,
/// claimed in the meta hash before anything else is written), `notify-keyspace-events` on every primary (shared
/// with other runs through the server's record), and the emergency cleanup should the process be stopped hard.
struct RunClaim {
    let configuration: RunConfiguration
    let say: @Sendable (String) -> Void
    let servers: RunServers
    let keyspace: RunKeyspace
    /// One connection per primary (the server itself when not a cluster), and one for the run-level keys.
    let nodes: [RedisConnection]
    let control: RedisConnection
    /// Whether the server is a private one, stopped with everything in it at the end.
    let embedded: EmbeddedRedis?
    private(set) var notifications: [NotificationSettings] = []
    /// Nodes whose setting the bridge changed on a reconnection (a failover's new primary): put back at the end too.
    let settingChanges = NodeSettingChanges()
    /// For a Sentinel-managed server: the primary the run changed the setting on at the start.
    private(set) var sentinelPrimary: RedisEndpoint?

    /// Claims the prefix, then the notification setting on every primary; on a failure, gives back what it took.
    static func take(_ keyspace: RunKeyspace, configuration: RunConfiguration, servers: RunServers, nodes: [RedisConnection], control: RedisConnection,
                     embedded: EmbeddedRedis?, say: @escaping @Sendable (String) -> Void) async throws -> RunClaim {
        var claim = RunClaim(configuration: configuration, say: say, servers: servers, keyspace: keyspace, nodes: nodes, control: control, embedded: embedded)
        if case .sentinel = control.endpoint.address { claim.sentinelPrimary = await control.connectedServer() }
        try await claim.claimPrefix()
        if configuration.keep, embedded != nil {
            Diagnostics.warn("--keep keeps nothing on a private server: it stops at exit with everything in it. Use --redis URL to keep a run.")
        }
        do {
            for (node, primary) in zip(nodes, servers.primaries) {
                claim.notifications.append(try await NotificationSettings.prepare(control: node, endpoint: primary, keyspace: keyspace,
                                                                                  recordKey: servers.notificationRecordKey(on: primary),
                                                                                  timeout: configuration.timeout, say: say))
            }
        } catch {
            // Nothing of the run may stay: the settings already changed go back, and the claim is given up.
            for (node, settings) in zip(nodes, claim.notifications) { _ = try? await settings.release(on: node) }
            _ = try? await control.send(RedisCommand("DEL", keyspace.meta))
            throw error
        }
        return claim
    }

    /// The run removes everything under its prefix at the end, so it must own the prefix from the start: the
    /// prefix is empty, and this driver claims the run id before it writes anything else (a driver started at
    /// the same instant with the same --run-id loses the claim and touches nothing).
    private func claimPrefix() async throws {
        for node in nodes {
            guard let existing = try await RunCleanup.firstKey(of: keyspace, on: node) else { continue }
            throw try await prefixTaken(example: existing)
        }
        let owner = "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UUID().uuidString.prefix(8))"
        guard try await RunMeta.claim(keyspace, owner: owner, safetyTTL: configuration.safetyTTL, on: control) else {
            throw RunError(.usage, "run id \(keyspace.runID) was just claimed by another driver started at the same moment: that run is still running. Choose another --run-id (or none: a new one is made).")
        }
    }

    /// The error for a prefix that already holds keys: a run still running, a kept run, or keys of unknown origin.
    private func prefixTaken(example: String) async throws -> RunError {
        switch try await RunMeta.liveness(keyspace, on: control) {
        case .running(let beatAgo):
            return RunError(.usage, "run \(keyspace.runID) is still running under \(keyspace.prefix) (\(RunMeta.lastBeat(beatAgo))): choose another --run-id or --namespace.")
        case .ended:
            return RunError(.usage, "a kept run \(keyspace.runID) holds keys under \(keyspace.prefix) (for example \(example)): a run only uses an empty prefix. Choose another --run-id or --namespace, or remove that kept run with: \(cleanupCommand)")
        case .absent:
            return RunError(.usage, "keys already exist under \(keyspace.prefix) (for example \(example)): a run only uses an empty prefix. Choose another --run-id or --namespace.")
        }
    }

    /// The command that removes this run's keys by hand, naming the server (`--redis`) it is on.
    var cleanupCommand: String {
        servers.endpoint.cleanupCommand(runID: keyspace.runID, namespace: keyspace.namespace)
    }

    /// One line per primary on what the run did to its notification setting.
    func describeNotifications() {
        for (settings, primary) in zip(notifications, servers.primaries) {
            let on = servers.cluster != nil ? " on \(primary.addressDescription)" : ""
            if settings.others > 0, let value = settings.value {
                say("notify-keyspace-events is '\(value)'\(on), shared with \(settings.others) other run\(settings.others == 1 ? "" : "s") on this server; the last to end puts back '\(settings.original ?? "")'.")
            } else if let applied = settings.applied {
                say("notify-keyspace-events was '\(settings.original ?? "")'\(on): set to '\(applied)' for the run, put back when the last run using it ends.")
            }
        }
    }

    /// Should the process be stopped hard (a second Ctrl-C, SIGTERM): the private server stops, or the run's keys
    /// and settings are put back. Cleared by `giveBack`.
    func registerEmergencyCleanup() {
        if let embedded {
            EmergencyCleanup.shared.register(runID: keyspace.runID, remedy: cleanupCommand) { await embedded.stop() }
        } else {
            let undos = zip(servers.primaries, notifications).map { EmergencyCleanup.undo(endpoint: $0.0, keyspace: keyspace, notifications: $0.1, keep: configuration.keep) }
            EmergencyCleanup.shared.register(runID: keyspace.runID, remedy: cleanupCommand) { for undo in undos { await undo() } }
        }
    }

    /// Removes the run's keys (unless kept) and puts the setting back, whatever happened to the run.
    /// Connections idle during the run (a cluster's admin connections) may have been closed by the server's idle
    /// `timeout` or by someone: each step is retried, and the retry reopens the connection. All of them share
    /// a 2 s bound (each gets 200 ms at least), so a server that is gone does not hold the exit back.
    func giveBack() async {
        defer { EmergencyCleanup.shared.clear() }
        let endDeadline = ContinuousClock.now + .seconds(2)
        var endPatience: Duration { max(.milliseconds(200), endDeadline - ContinuousClock.now) }
        let (primaries, opened) = await primariesNow(patience: endPatience)
        defer { for connection in opened { connection.close() } }
        if !configuration.keep, embedded == nil {
            // The meta hash and the streams first: consumer processes still running then write nothing more.
            let gates = (try? await RunCleanup.gates(of: keyspace, on: control)) ?? [keyspace.meta]
            for node in primaries {
                do { _ = try await withRetries(giveUpAfter: endPatience) { try await RunCleanup.removeKeys(of: keyspace, on: node, gates: gates) } }
                catch { await warnKeysLeft(on: node, because: error, patience: endPatience) }
            }
        } else if configuration.keep, embedded == nil {
            say("Kept the run's keys under \(keyspace.prefix) (--keep); remove them with: \(cleanupCommand)")
        }
        for (node, settings) in zip(nodes, notifications) {
            let stillPrimary = primaries.contains { $0.endpoint.address == node.endpoint.address }
            do {
                if !stillPrimary {
                    // A failover made it a replica: the record of the runs sharing the setting moved with its slot,
                    // but the setting is this node's own.
                    if let line = try await releaseOnFormerPrimary(node, settings) { say("\(node.endpoint.addressDescription): \(line)") }
                } else if let line = try await withRetries(giveUpAfter: endPatience, { try await settings.release(on: node) }) {
                    // A Sentinel group's primary is named by the server it is now, not by the group.
                    let sentinel = if case .sentinel = node.endpoint.address { true } else { false }
                    let named = sentinel ? await node.connectedServer()?.addressDescription : servers.cluster != nil ? node.endpoint.addressDescription : nil
                    say(named.map { "\($0): \(line)" } ?? line)
                }
            } catch {
                if stillPrimary, let refusal = WriteRefusal.of(error),
                   let released = try? await settings.releaseWhileWritesRefused(on: node, refusal: refusal, cleanup: forcedCleanupCommand) {
                    let on = servers.cluster != nil ? "\(node.endpoint.addressDescription): " : ""
                    if let left = released.recordLeft { Diagnostics.warn(on + left) } else if let line = released.line { say(on + line) }
                    continue
                }
                settings.share?.close()
                Diagnostics.warn("could not restore notify-keyspace-events to '\(settings.original ?? "")' on \(node.endpoint.addressDescription) (\(error)); set it back with: \(settings.manualRestore(on: node.endpoint))")
            }
        }
        await restoreOnFormerSentinelPrimary(patience: endPatience)
        await restoreChangedOnReconnect(patience: endPatience)
    }

    /// The command that removes this run's keys once the server accepts writes, naming the server. --force: a
    /// run that could not mark itself ended reads as running for 15 s after its last beat.
    var forcedCleanupCommand: String {
        servers.endpoint.cleanupCommand(runID: keyspace.runID, namespace: keyspace.namespace, force: true)
    }

    /// One line when the run's keys on `node` could not all be removed: how many are left (read with SCAN, which
    /// works where writes are refused), how many of them carry no TTL, why, and the command that removes them.
    private func warnKeysLeft(on node: RedisConnection, because error: any Error, patience: Duration) async {
        let refusal = WriteRefusal.of(error)
        let why = refusal.map { "Redis refused the deletes: \($0)" } ?? "\(error)"
        let server = node.endpoint.addressDescription
        let retry = (refusal != nil ? "once it accepts writes again" : "once it answers again") + ", remove them with: \(forcedCleanupCommand)"
        // A server that is gone is not asked again: the removal already waited for it.
        let gone = (error as? RedisError)?.breaksConnection ?? false
        guard !gone, let left = try? await withRetries(giveUpAfter: patience, { try await RunCleanup.remaining(of: keyspace, on: node) }) else {
            Diagnostics.warn("could not remove the run's keys under \(keyspace.prefix) at \(server) (\(why)), nor count what is left; \(retry)")
            return
        }
        guard left.keys > 0 else { return }
        let lasting = left.withoutTTL == 0 ? "all with a TTL" : "\(Format.count(left.withoutTTL)) of them without a TTL, which stay until removed"
        Diagnostics.warn("could not remove \(Format.count(left.keys)) keys of the run under \(keyspace.prefix) at \(server) (\(lasting)): \(why); \(retry)")
    }

    /// After a Sentinel failover: the setting the run changed on the primary it started on (a replica now, or
    /// gone) goes back there; the record of the runs sharing it was on the data the new primary took over.
    private func restoreOnFormerSentinelPrimary(patience: Duration) async {
        guard let former = sentinelPrimary, let settings = notifications.first, settings.applied != nil, let original = settings.original,
              let now = await control.connectedServer(), now.address != former.address else { return }
        await putBack(original, on: former, why: "the primary the run started on; the sentinels moved it to \(now.addressDescription)", patience: patience)
    }

    /// Sets `notify-keyspace-events` on one node to `original`, on a connection of its own, and says so (or warns).
    private func putBack(_ original: String, on node: RedisEndpoint, why: String, patience: Duration) async {
        do {
            let connection = try await RedisConnection.connect(to: node, name: "expiry-bench:\(keyspace.runID):admin", timeout: patience)
            defer { connection.close() }
            try await connection.send(RedisCommand("CONFIG", "SET", "notify-keyspace-events", original))
            say("\(node.addressDescription): notify-keyspace-events put back to '\(original)' (\(why)).")
        } catch {
            Diagnostics.warn("could not restore notify-keyspace-events to '\(original)' on \(node.addressDescription) (\(error)); set it back there with: \(node.redisCLI("CONFIG SET notify-keyspace-events '\(original)'"))")
        }
    }

    /// The connections to the primaries as they are now: after a failover in a cluster, the promoted replicas in
    /// place of the demoted primaries (newly opened ones are returned to be closed).
    private func primariesNow(patience: Duration) async -> (all: [RedisConnection], opened: [RedisConnection]) {
        guard let cluster = servers.cluster, (try? await cluster.refresh(timeout: patience)) != nil else { return (nodes, []) }
        var all: [RedisConnection] = [], opened: [RedisConnection] = []
        for primary in cluster.primaries {
            if let known = nodes.first(where: { $0.endpoint.address == primary.address }) {
                all.append(known)
            } else if let connection = try? await RedisConnection.connect(to: primary, name: "expiry-bench:\(keyspace.runID):admin", timeout: patience) {
                all.append(connection)
                opened.append(connection)
            }
        }
        return (all, opened)
    }

    /// Puts back the setting of a node that is no longer a primary, and takes the run out of the record, which
    /// is now on the primary that owns its slot.
    private func releaseOnFormerPrimary(_ node: RedisConnection, _ settings: NotificationSettings) async throws -> String? {
        settings.share?.close()
        if let share = settings.share, let route = servers.route(for: share.key) {
            var zero = servers.endpoint
            zero.database = 0
            let record = try await RedisConnection.connect(to: zero, name: "expiry-bench:notify-record", timeout: configuration.timeout, route: route)
            defer { record.close() }
            _ = try await record.send(RedisCommand("HDEL", share.key, share.member))
            let left = try await record.send(RedisCommand("HKEYS", share.key)).array?.compactMap(\.string) ?? []
            if !left.contains(where: { $0.hasPrefix("run:") }) { _ = try await record.send(RedisCommand("DEL", share.key)) }
        }
        guard settings.applied != nil, let original = settings.original else { return nil }
        try await node.send(RedisCommand("CONFIG", "SET", "notify-keyspace-events", original))
        return "notify-keyspace-events put back to '\(original)' (this node became a replica during the run)."
    }

    /// The nodes the bridge turned the events on for after a reconnection (a promoted replica), other than the
    /// ones the run claimed: their setting goes back to what it was.
    private func restoreChangedOnReconnect(patience: Duration) async {
        // The claimed nodes, and for a Sentinel group the primary it is now: their setting went back above.
        var claimed = nodes.map(\.endpoint.address)
        for node in nodes { if let now = await node.connectedServer() { claimed.append(now.address) } }
        for (node, original) in settingChanges.all where !claimed.contains(node.address) {
            await putBack(original, on: node, why: "the run turned expired events on there after a failover", patience: patience)
        }
    }
}
