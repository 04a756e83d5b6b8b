import ExpiryPipeline
import RedisClient

/// Removing a whole run by name, on a single server or on every primary of a cluster (`expiry-bench cleanup`).
extension RunCleanup {
    /// Removes every key of run `runID` under `namespace` from the server `connection` talks to or, if it is a
    /// cluster node, from every primary of its cluster. Only a prefix that holds a run (its meta hash) is touched.
    /// A run whose driver is still beating is refused (`RunError` 64) unless `force`, which warns through `warn`.
    /// The run also leaves the servers' record of runs sharing `notify-keyspace-events`, which puts the setting
    /// back when no other run needs it (a run killed outright could not); `say` tells what became of it.
    /// - Returns: how many keys were removed, or nil if there is no such run.
    /// - Throws: `RunError` 75 when keys of the run are still under its prefix afterwards (counted with SCAN, which
    ///   works where writes are refused), with how many and why (the server's refusal of the deletes).
    package static func removeRun(namespace: String, runID: String, using connection: RedisConnection, timeout: Duration,
                                 force: Bool = false, warn: (String) -> Void = { Diagnostics.warn($0) },
                                 say: (String) -> Void = { _ in }) async throws -> Int? {
        let facts = try await Preflight.facts(connection, endpoint: connection.endpoint)
        let servers = try await RunServers.discover(endpoint: connection.endpoint, control: connection, clusterEnabled: facts.clusterEnabled)
        let keyspace = RunKeyspace(namespace: namespace, runID: runID, cluster: servers.cluster != nil)
        let control = servers.cluster == nil ? connection
            : try await RedisConnection.connect(to: connection.endpoint, name: "expiry-bench:cleanup", timeout: timeout, route: servers.route(for: keyspace.meta))
        defer { if servers.cluster != nil { control.close() } }
        switch try await RunMeta.liveness(keyspace, on: control) {
        case .absent:
            return nil
        case .running(let beatAgo):
            let what = "run \(runID) is still running (\(RunMeta.lastBeat(beatAgo)))"
            guard force else {
                throw RunError(.usage, "\(what): removing its keys would break it. Stop it first (Ctrl-C on its driver removes them), or pass --force.")
            }
            warn("\(what); removing its keys anyway because of --force: that run will fail.")
        case .ended:
            break
        }
        let nodes = servers.cluster == nil ? [connection] : try await servers.connectToPrimaries(name: "expiry-bench:cleanup", timeout: timeout)
        defer { if servers.cluster != nil { for node in nodes { node.close() } } }
        var removed = 0
        var refused: String?
        for node in nodes {
            do {
                removed += try await removeKeys(of: keyspace, on: node)
            } catch let error as RedisError where error.code == .server {
                refused = refused ?? WriteRefusal.of(error) ?? error.serverMessage ?? error.message
            }
        }
        let member = NotificationShare.member(namespace: namespace, runID: runID)
        for primary in servers.primaries {
            let on = servers.cluster != nil ? "\(primary.addressDescription): " : ""
            do {
                let departure = try await NotificationShare.leave(member: member, key: servers.notificationRecordKey(on: primary), endpoint: primary, timeout: timeout)
                if let line = departure.flatMap(NotificationSettings.describe) { say(on + line) }
            } catch let error as RedisError where error.code == .server {
                warn("\(on)could not update the record of runs sharing notify-keyspace-events (\(error.serverMessage ?? error.message)): check the setting with \(primary.redisCLI("CONFIG GET notify-keyspace-events"))")
            }
        }
        var left = 0
        for node in nodes { left += try await remaining(of: keyspace, on: node).keys }
        if left > 0 {
            let why = refused.map { "Redis refused the deletes: \($0)" } ?? "keys were written under it while it ran"
            throw RunError(.keysLeft, "removed \(Format.count(removed)) keys of run \(runID), but \(Format.count(left)) are still under \(keyspace.prefix) at \(connection.endpoint.addressDescription) (\(why)). Run this again once the server accepts writes.")
        }
        return removed
    }
}
