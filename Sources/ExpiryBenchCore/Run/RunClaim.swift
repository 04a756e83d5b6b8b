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

    /// Claims the prefix, then the notification setting on every primary; on a failure, gives back what it took.
    static func take(_ keyspace: RunKeyspace, configuration: RunConfiguration, servers: RunServers, nodes: [RedisConnection], control: RedisConnection,
                     embedded: EmbeddedRedis?, say: @escaping @Sendable (String) -> Void) async throws -> RunClaim {
        var claim = RunClaim(configuration: configuration, say: say, servers: servers, keyspace: keyspace, nodes: nodes, control: control, embedded: embedded)
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
        guard try await RunMeta.claim(keyspace, owner: owner, on: control) else {
            throw RunError(.usage, "run id \(keyspace.runID) was just claimed by another driver started at the same moment: that run is still running. Choose another --run-id (or none: a new one is made).")
        }
    }

    /// The error for a prefix that already holds keys: a run still running, a kept run, or keys of unknown origin.
    private func prefixTaken(example: String) async throws -> RunError {
        switch try await RunMeta.liveness(keyspace, on: control) {
        case .running(let beatAgo):
            return RunError(.usage, "run \(keyspace.runID) is still running under \(keyspace.prefix) (\(RunMeta.lastBeat(beatAgo))): choose another --run-id or --namespace.")
        case .ended:
            return RunError(.usage, "a kept run \(keyspace.runID) holds keys under \(keyspace.prefix) (for example \(example)): a run only uses an empty prefix. Choose another --run-id or --namespace, or remove that kept run with: expiry-bench cleanup --namespace \(keyspace.namespace) --run-id \(keyspace.runID)")
        case .absent:
            return RunError(.usage, "keys already exist under \(keyspace.prefix) (for example \(example)): a run only uses an empty prefix. Choose another --run-id or --namespace.")
        }
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
            EmergencyCleanup.shared.register(runID: keyspace.runID) { await embedded.stop() }
        } else {
            let undos = zip(servers.primaries, notifications).map { EmergencyCleanup.undo(endpoint: $0.0, keyspace: keyspace, notifications: $0.1, keep: configuration.keep) }
            EmergencyCleanup.shared.register(runID: keyspace.runID) { for undo in undos { await undo() } }
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
        if !configuration.keep, embedded == nil {
            do { for node in nodes { _ = try await withRetries(giveUpAfter: endPatience) { try await RunCleanup.removeKeys(of: keyspace, on: node) } } }
            catch { Diagnostics.warn("could not remove the run's keys (\(error)); remove them with: expiry-bench cleanup --run-id \(keyspace.runID)") }
        } else if configuration.keep, embedded == nil {
            say("Kept the run's keys under \(keyspace.prefix) (--keep); remove them with: expiry-bench cleanup --run-id \(keyspace.runID)")
        }
        for (node, settings) in zip(nodes, notifications) {
            do {
                if let line = try await withRetries(giveUpAfter: endPatience, { try await settings.release(on: node) }) {
                    say(servers.cluster != nil ? "\(node.endpoint.addressDescription): \(line)" : line)
                }
            } catch {
                settings.share?.close()
                Diagnostics.warn("could not restore notify-keyspace-events to '\(settings.original ?? "")' on \(node.endpoint.addressDescription) (\(error)); set it back with: \(settings.manualRestore)")
            }
        }
    }
}
