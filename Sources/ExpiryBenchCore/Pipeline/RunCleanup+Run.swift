/// Removing a whole run by name, on a single server or on every primary of a cluster (`expiry-bench cleanup`).
extension RunCleanup {
    /// Removes every key of run `runID` under `namespace` from the server `connection` talks to or, if it is a
    /// cluster node, from every primary of its cluster. Only a prefix that holds a run (its meta hash) is touched.
    /// - Returns: how many keys were removed, or nil if there is no such run.
    public static func removeRun(namespace: String, runID: String, using connection: RedisConnection, timeout: Duration) async throws -> Int? {
        let facts = try await Preflight.facts(connection, endpoint: connection.endpoint)
        let servers = try await RunServers.discover(endpoint: connection.endpoint, control: connection, clusterEnabled: facts.clusterEnabled)
        let keyspace = RunKeyspace(namespace: namespace, runID: runID, cluster: servers.cluster != nil)
        if servers.cluster == nil {
            guard try await connection.send(RedisCommand("EXISTS", keyspace.meta)).int == 1 else { return nil }
            return try await removeKeys(of: keyspace, on: connection)
        }
        let control = try await RedisConnection.connect(to: connection.endpoint, name: "expiry-bench:cleanup", timeout: timeout, route: servers.route(for: keyspace.meta))
        defer { control.close() }
        guard try await control.send(RedisCommand("EXISTS", keyspace.meta)).int == 1 else { return nil }
        let nodes = try await servers.connectToPrimaries(name: "expiry-bench:cleanup", timeout: timeout)
        defer { for node in nodes { node.close() } }
        var removed = 0
        for node in nodes { removed += try await removeKeys(of: keyspace, on: node) }
        return removed
    }
}
