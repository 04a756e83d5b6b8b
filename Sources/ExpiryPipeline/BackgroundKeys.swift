import RedisClient

/// Long-TTL keys under the run's namespace, written before the run to reproduce a real cache: Redis's expiry
/// cycle samples keys with a TTL at random, so when most of them are live, expired events come late.
package enum BackgroundKeys {
    /// The TTL of background keys: far longer than any run.
    package static let ttl: Duration = .seconds(3600)

    /// Writes `count` keys `<shard prefix>bg:<i>` with a one-hour TTL, 1,000 per round trip (in a cluster, call it
    /// for each shard on that shard's connection).
    /// Stops early (keys written so far stay, under the run's prefix) when `shouldStop` says so.
    package static func write(_ count: Int, keyspace: ShardKeyspace, on connection: RedisConnection,
                             shouldStop: () -> Bool = { false }) async throws {
        var next = 0
        let ttl = String(Self.ttl.milliseconds)
        while next < count, !shouldStop() {
            let end = min(count, next + 1000)
            let commands = (next..<end).map { RedisCommand("SET", keyspace.shardPrefix + "bg:" + String($0), "1", "PX", ttl) }
            for reply in try await connection.pipeline(commands) { _ = try reply.unwrapped(for: "SET background key") }
            next = end
        }
    }
}
