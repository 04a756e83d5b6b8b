import Foundation
import ExpiryPipeline
import RedisClient

/// The end of a run: what Redis holds, what every process counted, and what the consumer processes reported.
extension Verification {
    /// Reads the end state from Redis, shard by shard: processed and dead-letter bitmaps (and their overlap), the
    /// due index, the group's pending entries, and the tallies of first commits and repeats that every process's
    /// commits kept. If Redis cannot be reached, the client's own counts stand in, and say so.
    /// - Parameters:
    ///   - reportedCommits: first commits confirmed to the consumers of other processes that reported.
    ///   - patience: how long Redis may stay unreachable before the client's counts stand in; short after a
    ///     component already waited `--timeout` for it, so that the run ends within `--timeout` and a few seconds.
    static func read(requested: Int, shards: [ShardKeyspace], connections: [RedisConnection], counters: RunCounters, reportedCommits: Int = 0,
                     patience: Duration) async -> Verification {
        let figures = counters.snapshot()
        var verification = Verification(
            requested: requested, generated: figures.generated,
            processedBits: figures.committed, firstCommitsCounted: figures.committed,
            duplicateCommits: figures.duplicateCommits, deadLettered: figures.deadLettered,
            pending: 0, due: 0)
        let confirmed = figures.committed + reportedCommits
        verification.clientsProcessed = confirmed
        do {
            var totals = (processed: 0, due: 0, pending: 0, dead: 0, overlap: 0)
            var perShard: [Int] = []
            for (shard, connection) in zip(shards, connections) {
                let replies = try await withRetries(giveUpAfter: patience) {
                    try await connection.pipeline([
                        RedisCommand("BITCOUNT", shard.processed),
                        RedisCommand("ZCARD", shard.dueIndex),
                        RedisCommand("XPENDING", shard.stream, shard.group),
                        RedisCommand("XLEN", shard.deadLetters),
                        RedisCommand("BITOP", "AND", shard.overlap, shard.processed, shard.deadBits),
                        RedisCommand("BITCOUNT", shard.overlap),
                        RedisCommand("DEL", shard.overlap),
                    ])
                }
                // The group is made once, when the run starts, and nothing makes it again: without it, the server
                // lost the run's data (a restart without persistence, a flush, a replica that lacked it).
                if case .error(let message) = replies[2], message.hasPrefix("NOGROUP") || message.contains("no such key") {
                    verification.dataLost = Verification.DataLoss(shard: shard.shardTag ?? shard.stream, reason: message)
                    verification.processedBits = confirmed
                    return verification
                }
                let values = try replies.map { try $0.unwrapped(for: "verification") }
                let processed = Int(values[0].int ?? 0)
                perShard.append(processed)
                totals.processed += processed
                totals.due += Int(values[1].int ?? 0)
                totals.pending += Int(values[2].array?.first?.int ?? 0)
                totals.dead += Int(values[3].int ?? 0)
                totals.overlap += Int(values[5].int ?? 0)
            }
            let tallies = try await withRetries(giveUpAfter: patience) { try await Tallies.read(shards: shards, connections: connections) }
            verification.processedBits = totals.processed
            verification.processedPerShard = perShard
            verification.due = totals.due
            verification.pending = totals.pending
            verification.deadLettered = totals.dead
            verification.committedAndDeadLettered = totals.overlap
            // The clients' count of confirmed first commits can only exceed Redis's if Redis lost acknowledged
            // writes (a failover before replication): then the check below reports it.
            verification.commitsPerConsumer = tallies.perConsumer
            verification.firstCommitsCounted = max(tallies.perConsumer.values.reduce(0, +), confirmed)
            verification.duplicateCommits = max(verification.duplicateCommits, tallies.repeats)
        } catch {
            verification.unverifiable = "Redis could not be reached to verify the run (\(error)); the figures are the client's own counts"
        }
        return verification
    }

}

/// What the commit script counted in the shards' tallies, over every process.
struct Tallies {
    var perConsumer: [String: Int] = [:]
    var repeats = 0

    /// Sums the shards' tallies: first commits per consumer, and repeated commits.
    static func read(shards: [ShardKeyspace], connections: [RedisConnection]) async throws -> Tallies {
        var tallies = Tallies()
        for (shard, connection) in zip(shards, connections) {
            for (name, text) in try await connection.send(RedisCommand("HGETALL", shard.tally)).fieldMap {
                let value = Int(text) ?? 0
                if name.hasPrefix("c:") {
                    tallies.perConsumer[String(name.dropFirst(2)), default: 0] += value
                } else if name == "dup" {
                    tallies.repeats += value
                }
            }
        }
        return tallies
    }

}

extension RunReport.Consumer {
    /// The report's consumer rows: every consumer that committed (from any process) and every consumer of this
    /// process, in a natural order (`consumer-2` before `consumer-10`).
    static func rows(tallies: [String: Int], local: [String]) -> [RunReport.Consumer] {
        var counts = tallies
        for name in local where counts[name] == nil { counts[name] = 0 }
        let total = counts.values.reduce(0, +)
        return counts.keys.sorted { $0.compare($1, options: .numeric) == .orderedAscending }.map { name in
            let processed = counts[name] ?? 0
            return RunReport.Consumer(name: name, processed: processed, share: total > 0 ? Double(processed) / Double(total) : 0)
        }
    }

}

/// What the consumer processes that joined a run reported at its end.
struct ProcessReports {
    var joined = 0
    var reported = 0
    var reconnects = 0
    /// First commits confirmed to their consumers.
    var committed = 0

    /// Waits (up to 10 s, or `timeout` if longer) for every consumer process that joined to leave its figures in
    /// the meta hash, and adds them to this process's counters and latencies.
    static func collect(keyspace: RunKeyspace, control: RedisConnection, context: PipelineContext, timeout: Duration, stop: StopSignal) async -> ProcessReports {
        let clock = ContinuousClock()
        let deadline = clock.now + max(.seconds(10), timeout)
        var meta: [String: String] = [:]
        while true {
            meta = (try? await RunMeta.read(keyspace, on: control)) ?? [:]
            let joined = meta.keys.filter { $0.hasPrefix("member:") }.count
            let reported = meta.keys.filter { $0.hasPrefix("report:") }.count
            if reported >= joined || clock.now > deadline || stop.isRequested { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        var reconnects = 0
        var committed = 0
        let reports = meta.filter { $0.key.hasPrefix("report:") }.compactMap { ProcessReport.decode($0.value) }
        for report in reports {
            report.merge(into: context.counters, latencies: context.latencies)
            reconnects += report.connectionReconnects
            committed += report.figures.committed
        }
        return ProcessReports(joined: meta.keys.filter { $0.hasPrefix("member:") }.count, reported: reports.count, reconnects: reconnects, committed: committed)
    }
}
