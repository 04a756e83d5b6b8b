import ExpiryPipeline
import RedisClient

/// Removing a whole run by name, on a single server or on every primary of a cluster (`expiry-bench cleanup`).
extension RunCleanup {
    /// Removes every key of run `runID` under `namespace` from the server `connection` talks to or, if it is a
    /// cluster node, from every primary of its cluster. A run whose driver is still beating is refused (`RunError`
    /// 64) unless `force`, which warns through `warn`. Keys under the prefix without the run's meta hash (the
    /// locks of a run killed outright, which outlive its other keys' safety TTL; or keys that consumer processes of
    /// older versions wrote after their driver removed the run) belong to no run: refused (64) unless `force`,
    /// which removes them as well. Keys still there after the removal (made again
    /// meanwhile, or refused) are removed once more, then named in a `RunError` (exit 1).
    /// The run also leaves the servers' record of runs sharing `notify-keyspace-events`, which puts the setting
    /// back when no other run needs it (a run killed outright could not); `say` tells what became of it.
    /// - Returns: how many keys were removed, or nil if there is no such run and nothing under its prefix.
    /// - Throws: `RunError` 75 when the server refused the deletes and keys of the run are still under its prefix
    ///   (counted with SCAN, which works where writes are refused), with how many and why; `RunError` 1 when keys
    ///   were made again under it while it ran.
    package static func removeRun(namespace: String, runID: String, using connection: RedisConnection, timeout: Duration,
                                 force: Bool = false, warn: (String) -> Void = { Diagnostics.warn($0) },
                                 say: (String) -> Void = { _ in }) async throws -> Int? {
        let facts = try await Preflight.facts(connection, endpoint: connection.endpoint)
        let servers = try await RunServers.discover(endpoint: connection.endpoint, control: connection, clusterEnabled: facts.clusterEnabled)
        let keyspace = RunKeyspace(namespace: namespace, runID: runID, cluster: servers.cluster != nil)
        let control = servers.cluster == nil ? connection
            : try await RedisConnection.connect(to: connection.endpoint, name: "expiry-bench:cleanup", timeout: timeout, route: servers.route(for: keyspace.meta))
        defer { if servers.cluster != nil { control.close() } }
        let nodes = servers.cluster == nil ? [connection] : try await servers.connectToPrimaries(name: "expiry-bench:cleanup", timeout: timeout)
        defer { if servers.cluster != nil { for node in nodes { node.close() } } }
        switch try await RunMeta.liveness(keyspace, on: control) {
        case .absent:
            var example: String?
            for node in nodes where example == nil { example = try await firstKey(of: keyspace, on: node) }
            guard let example else { return nil }
            let what = "no run \(runID) under namespace '\(namespace)' (no meta hash), but keys are left under \(keyspace.prefix) (for example \(example))"
            guard force else {
                throw RunError(.usage, "\(what): their run is gone (the locks of a run killed outright outlive its other keys). Remove them with --force.")
            }
            warn("\(what); removing them because of --force.")
        case .running(let beatAgo):
            let what = "run \(runID) is still running (\(RunMeta.lastBeat(beatAgo)))"
            guard force else {
                throw RunError(.usage, "\(what): removing its keys would break it. Stop it first (Ctrl-C on its driver removes them), or pass --force.")
            }
            warn("\(what); removing its keys anyway because of --force: that run will fail.")
        case .ended:
            break
        }
        // The meta hash and the streams first: consumer processes still running then write nothing more.
        let gates = try await gates(of: keyspace, on: control)
        var removed = 0
        var refused: String?
        func removeOnEveryNode(gates: [String]) async throws {
            for node in nodes {
                do {
                    removed += try await removeKeys(of: keyspace, on: node, gates: gates)
                } catch let error as RedisError where error.code == .server {
                    refused = refused ?? WriteRefusal.of(error) ?? error.serverMessage ?? error.message
                }
            }
        }
        try await removeOnEveryNode(gates: gates)
        // Keys made again meanwhile (a process of the run still writing) go on a second pass.
        if refused == nil, try await count(of: keyspace, on: nodes).count > 0 { try await removeOnEveryNode(gates: []) }
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
        let left = try await count(of: keyspace, on: nodes)
        if left.count > 0, let example = left.example {
            let at = nodes.map(\.endpoint.addressDescription).joined(separator: ", ")
            if let refused {
                throw RunError(.keysLeft, "removed \(Format.count(removed)) keys of run \(runID), but \(Format.count(left.count)) are still under \(keyspace.prefix) at \(at) (Redis refused the deletes: \(refused)). Run this again once the server accepts writes.")
            }
            throw RunError(.verificationFailed, "removed \(Format.count(removed)) keys of run \(runID), but \(Format.count(left.count)) are still under \(keyspace.prefix) at \(at) (for example \(example)): something still writes there (a driver or consumer process of that run?); stop it and run cleanup again.")
        }
        return removed
    }

    /// Keys under the run's prefix on every node, and one of them.
    private static func count(of keyspace: RunKeyspace, on nodes: [RedisConnection]) async throws -> (count: Int, example: String?) {
        var total = 0
        var example: String?
        for node in nodes {
            let found = try await count(of: keyspace, on: node)
            total += found.count
            example = example ?? found.example
        }
        return (total, example)
    }
}
