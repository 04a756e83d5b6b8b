/// Creates the run's keys: each with its TTL and, in the same atomic step, its entry in the due index.
///
/// Open loop at `rate` keys/s (batches sent on a fixed schedule, whatever the pipeline does), or as fast as the
/// server takes them when `rate` is 0. Either way it waits while `maxOutstanding` keys are generated but not yet
/// finished, so a slow pipeline cannot fill the server's memory; such waits are counted.
public struct KeyGenerator: Sendable {
    let connection: RedisConnection
    let script: LoadedScript
    let keyspace: RunKeyspace
    let keys: Int
    let ttl: Duration
    let rate: Int
    let maxOutstanding: Int
    let counters: RunCounters

    public init(connection: RedisConnection, script: LoadedScript, keyspace: RunKeyspace, configuration: RunConfiguration, counters: RunCounters) {
        self.connection = connection
        self.script = script
        self.keyspace = keyspace
        self.keys = configuration.keys
        self.ttl = configuration.ttl
        self.rate = configuration.rate
        self.maxOutstanding = configuration.effectiveMaxOutstanding
        self.counters = counters
    }

    /// Keys per script call: about 100 calls a second at the given rate, between 1 and 1,000 keys.
    var batchSize: Int {
        rate == 0 ? 1000 : max(1, min(1000, rate / 100))
    }

    /// Generates all keys, returning when the last one is written or `shouldStop` says so.
    public func run(shouldStop: @Sendable () -> Bool) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        var next = 0
        let ttlMilliseconds = String(ttl.milliseconds)
        while next < keys, !shouldStop() {
            let count = min(batchSize, keys - next)
            if rate > 0 {
                // Open loop: batch n is due at start + n × batch / rate, whatever happened before it.
                let due = start + .nanoseconds(Int64(Double(next) / Double(rate) * 1e9))
                if due > clock.now { try await clock.sleep(until: due) }
            }
            var waited = false
            while counters.generated.load(ordering: .relaxed) - counters.finished + count > maxOutstanding, !shouldStop() {
                waited = true
                try await Task.sleep(for: .milliseconds(1))
            }
            if waited { counters.generatorWaits.add(1, ordering: .relaxed) }
            let first = next
            _ = try await connection.evalsha(script, keys: [keyspace.dueIndex, keyspace.generatorMark]) { command in
                command.append(keyspace.dataPrefix)
                command.append(ttlMilliseconds)
                command.append(first)
                command.append(count)
            }
            next += count
            counters.generated.add(count, ordering: .relaxed)
            counters.noteUnexpired()
        }
    }
}
