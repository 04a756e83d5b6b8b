import Foundation
import ExpiryPipeline
import RedisClient

/// The end of a run: what Redis holds, what every process counted, and what the consumer processes reported.
extension Verification {
    /// Reads the end state from Redis, shard by shard: processed and dead-letter bitmaps (and their overlap), the
    /// due index, the group's pending and undelivered entries, and the tallies of first commits and repeats that
    /// every process's commits kept. When keys are left unfinished, it reads which of them are still in Redis
    /// (`Unfinished`), so that work left is told from work lost. If Redis cannot be read, every figure of Redis's
    /// is unknown, and `unreadable` says why and where.
    /// - Parameters:
    ///   - connections: one per shard, that wait for no replica (a read must not fail because WAIT fell short).
    ///   - confirmed: the keys whose first commit this process's consumers were told of.
    ///   - reportedCommits: first commits confirmed to the consumers of other processes that reported.
    ///   - patience: how long Redis may stay unreachable before the figures are given up as unknown; short after a
    ///     component already waited `--timeout` for it, so that the run ends within `--timeout` and a few seconds.
    static func read(requested: Int, shards: [ShardKeyspace], connections: [RedisConnection], server: String, counters: RunCounters,
                     confirmed: ConfirmedCommits, reportedCommits: Int = 0, patience: Duration) async -> Verification {
        let figures = counters.snapshot()
        let clients = figures.committed + reportedCommits
        var verification = Verification(requested: requested, generated: figures.generated, held: nil, firstCommitsCounted: clients)
        verification.clientsProcessed = clients
        verification.confirmedTwice = figures.confirmedTwice
        do {
            var held = Held(processed: 0, deadLettered: 0, due: 0, pending: 0, undelivered: 0, repeats: 0, unprocessed: 0)
            for (shard, connection) in zip(shards, connections) {
                let shardHeld = try await withRetries(giveUpAfter: patience) { try await readShard(shard, on: connection) }
                if let loss = shardHeld.loss, verification.dataLost == nil { verification.dataLost = loss }
                verification.processedPerShard.append(shardHeld.held.processed)
                if let overlap = shardHeld.overlap {
                    verification.committedAndDeadLettered += overlap
                } else if verification.overlapUnknown == nil {
                    verification.overlapUnknown = "Redis refused the BITOP that compares the processed and dead-letter bitmaps (\(shardHeld.overlapRefused ?? "refused"))"
                }
                held.add(shardHeld.held)
            }
            let tallies = try await withRetries(giveUpAfter: patience) { try await Tallies.read(shards: shards, connections: connections) }
            verification.commitsPerConsumer = tallies.perConsumer
            verification.firstCommitsCounted = max(tallies.perConsumer.values.reduce(0, +), clients)
            held.repeats = tallies.repeats
            if figures.generated > held.processed + held.deadLettered {
                let unfinished = try await withRetries(giveUpAfter: patience) {
                    try await Unfinished.read(keys: max(requested, figures.generated), shards: shards, connections: connections, confirmed: confirmed.snapshot)
                }
                held.unprocessed = unfinished.unprocessed
                verification.lostCommits = unfinished.lostCommits
            }
            verification.held = held
        } catch let error as RedisError {
            (verification.unreadable, verification.unreadableCause) = Self.unreadable(error, server: server)
        } catch {
            verification.unreadable = "the end of the run could not be read from \(server) (\(error)): what Redis held is unknown"
            verification.unreadableCause = "the end could not be read from \(server)"
        }
        return verification
    }

    /// Why the end could not be read, as Redis said it: unreachable, or refusing the reads.
    static func unreadable(_ error: RedisError, server: String) -> (sentence: String, cause: String) {
        let what = "what Redis held (processed, pending, due, lost, unprocessed, done twice) is unknown"
        if error.breaksConnection || error.code == .timeout {
            return ("Redis at \(server) could not be reached to verify the run (\(error.message)): \(what)", "Redis at \(server) could not be reached at the end")
        }
        let said = error.serverMessage ?? error.message
        return ("Redis at \(server) refused the verification's reads (\(said)): \(what)", "Redis at \(server) refused the end's reads: \(said)")
    }

    /// One shard's end state, with the overlap of its bitmaps and whether its group is gone. The overlap needs a
    /// write (BITOP into a scratch key): on a server that refuses writes (NOREPLICAS, READONLY, MISCONF, OOM) it is
    /// unknown, with Redis's answer, and the other figures are still read.
    private static func readShard(_ shard: ShardKeyspace, on connection: RedisConnection) async throws
        -> (held: Held, overlap: Int?, overlapRefused: String?, loss: DataLoss?) {
        let replies = try await connection.pipeline([
            RedisCommand("BITCOUNT", shard.processed),
            RedisCommand("ZCARD", shard.dueIndex),
            RedisCommand("XPENDING", shard.stream, shard.group),
            RedisCommand("XLEN", shard.deadLetters),
            RedisCommand("BITOP", "AND", shard.overlap, shard.processed, shard.deadBits),
            RedisCommand("BITCOUNT", shard.overlap),
            RedisCommand("DEL", shard.overlap),
            RedisCommand("XINFO", "GROUPS", shard.stream),
        ])
        // The group is made once, when the run starts, and nothing makes it again: without it, the server lost
        // the run's data (a restart without persistence, a flush, a replica that lacked it). Nothing of the stream
        // is then held: no entry pending, none to deliver.
        var loss: DataLoss?
        if case .error(let message) = replies[2], message.hasPrefix("NOGROUP") || message.contains("no such key") {
            loss = DataLoss(shard: shard.shardTag ?? shard.stream, reason: message)
        }
        var overlapRefused: String?
        if case .error(let message) = replies[4], WriteRefusal.isRefusal(message) { overlapRefused = WriteRefusal.trimmed(message) }
        let values = try replies.enumerated().map { index, reply in
            loss != nil && (index == 2 || index == 7) || overlapRefused != nil && (4...6).contains(index) ? RESPValue.null : try reply.unwrapped(for: "verification")
        }
        let group = StreamTrimmer.groupFields(shard.group, in: values[7])
        let undelivered: Int? = loss != nil ? 0 : group["lag"].flatMap { Int($0) }
        let held = Held(processed: try count(values[0]), deadLettered: try count(values[3]), due: try count(values[1]),
                        pending: loss != nil ? 0 : try count(values[2].array?.first ?? .null), undelivered: undelivered, repeats: 0, unprocessed: 0)
        return (held, overlapRefused == nil ? try count(values[5]) : nil, overlapRefused, loss)
    }

    /// An integer reply as a count; a reply of another kind is a protocol error, never a zero.
    private static func count(_ reply: RESPValue) throws -> Int {
        guard let value = reply.int else { throw RedisError(.protocolViolation, "verification: expected a count, got \(reply)") }
        return Int(value)
    }

}

extension Verification.Held {
    /// Adds another shard's end state.
    mutating func add(_ other: Self) {
        processed += other.processed
        deadLettered += other.deadLettered
        due += other.due
        pending += other.pending
        undelivered = undelivered.flatMap { mine in other.undelivered.map { mine + $0 } }
        repeats += other.repeats
        unprocessed += other.unprocessed
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
