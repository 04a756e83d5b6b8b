import RedisClient

/// The three steps of a batch: claim, work, settle.
extension StreamConsumer {
    /// A settle call sent and not yet answered, giving the entries it handed back. A consumer has one at a time:
    /// the commit records its last call so that a retry is answered rather than redone, so its next settle
    /// waits for this one.
    typealias SettleInFlight = Task<[StreamEntry], Error>

    /// What a batch gave: entries handed back for another delivery, the next batch already claimed (when one was
    /// read while the batch's last keys were worked on, or by its final settle), and the final settle when it is
    /// still in flight.
    struct BatchOutcome {
        var handedBack: [StreamEntry] = []
        var next: [StreamEntry] = []
        var inFlight: SettleInFlight?
    }

    /// Claims, works on and settles one batch (see `work`).
    func process(_ entries: [StreamEntry], token: String, next: () -> (count: Int, token: String)?) async throws -> BatchOutcome {
        let claimed = try await claimBatch(entries, token: token)
        if claimed.isEmpty { return BatchOutcome() }
        return try await work(claimed, token: token, after: nil, next: next)
    }

    /// Works on and settles a claimed batch, after the previous batch's settle still in flight.
    ///
    /// The simulated handler takes `work` per key, `concurrency` keys at a time, each failing with probability
    /// `failRate`. Deadlines are cumulative, so timer overshoot on one key is not added to the next. Finished keys
    /// are settled every `commitEvery` of work (and at the end), so a key waits for at most that long after its
    /// work, not for the whole batch: one round trip per `commitEvery`, never one per key.
    ///
    /// The work never waits for a settle's round trip: a settle goes out as its keys finish and the work goes on;
    /// only the next settle waits for it. When `next` (asked as the last keys start) wants another batch and no
    /// key of this one failed, that batch is read and claimed while the last keys are worked on, and the final
    /// settle is left in flight for the caller: the consumer starts on the next batch at once. Where the consumer
    /// does not overlap (`overlaps`), each settle is waited for and the final one reads and claims the next batch
    /// in the same call.
    func work(_ claimed: [StreamEntry], token: String, after previous: SettleInFlight?,
              next: () -> (count: Int, token: String)?) async throws -> BatchOutcome {
        let succeeded = claimed.map { _ in failRate == 0 || Double.random(in: 0..<1) >= failRate }
        var outcome = BatchOutcome(inFlight: previous)
        var prefetch: Task<[StreamEntry], Error>?
        do {
            try await workRounds(claimed, succeeded: succeeded, token: token, outcome: &outcome, prefetch: &prefetch, next: next)
            if let prefetch { outcome.next = try await prefetch.value }
            return outcome
        } catch {
            // Nothing of this batch is left running: a settle still in flight could otherwise be retried after
            // the consumer's next one, and be redone instead of answered from the record.
            await Self.drain(outcome.inFlight)
            _ = try? await prefetch?.value
            throw error
        }
    }

    /// Whether settles and reads overlap the work (see `work`). Not at `--work 0` (no work to overlap), and not
    /// under `--wait-replicas`: there a settle retried on a new connection after its WAIT fell short may find its
    /// writes made and write nothing, so WAIT confirms it at once; with a later call already past it, the old
    /// primary's unreplicated commits were then counted twice across a failover (the Sentinel failover test
    /// failed 3 runs of 5 with the overlap on).
    var overlaps: Bool { work > .zero && connection.acknowledgement == nil }

    /// Waits for a settle in flight, whatever comes of it: if it failed, its entries stay pending and are
    /// reclaimed once idle.
    static func drain(_ settle: SettleInFlight?) async {
        _ = try? await settle?.value
    }

    private func workRounds(_ claimed: [StreamEntry], succeeded: [Bool], token: String, outcome: inout BatchOutcome,
                      prefetch: inout Task<[StreamEntry], Error>?, next: () -> (count: Int, token: String)?) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        var lastSettle = start
        var settled = 0
        var chunk = 0
        let rounds = work > .zero ? (claimed.count + concurrency - 1) / concurrency : 1
        let failed = succeeded.contains(false)
        for round in 1...rounds {
            if work > .zero {
                if overlaps, prefetch == nil, round > rounds - Self.readAheadRounds, !failed, !stats.stall.isSet, let read = next() {
                    prefetch = Task { try await readNext(read) }
                }
                try await clock.sleep(until: start + work * round)
            }
            if stats.crash.isSet { throw ConsumerCrashed() }
            let done = work > .zero ? min(round * concurrency, claimed.count) : claimed.count
            guard done == claimed.count || clock.now - lastSettle >= commitEvery else { continue }
            if done == claimed.count, stats.stall.isSet {
                // Chaos: stall past the lock TTL, then try to commit anyway (the commit is fenced).
                stats.stall.set(false)
                counters.add(\.chaosStalls, 1)
                try await Task.sleep(for: lockTTL + .milliseconds(100))
            }
            chunk += 1
            if let earlier = outcome.inFlight { outcome.handedBack += try await earlier.value }
            let keys = Array(claimed[settled..<done]), results = Array(succeeded[settled..<done]), record = "\(token)/\(chunk)"
            if overlaps, done < claimed.count || !failed {
                outcome.inFlight = Task { try await settleBatch(keys, succeeded: results, token: token, record: record).handedBack }
            } else {
                // Waited for: the last settle after a failure (what it hands back is redone first), and every
                // settle when the consumer does not overlap; the last one then also reads the next batch.
                let read = done == claimed.count && !failed ? next() : nil
                let settle = try await settleBatch(keys, succeeded: results, token: token, record: record, read: read)
                outcome.handedBack += settle.handedBack
                outcome.next = settle.next
                outcome.inFlight = nil
            }
            settled = done
            lastSettle = clock.now
        }
    }

    func claimBatch(_ entries: [StreamEntry], token: String) async throws -> [StreamEntry] {
        let lockMilliseconds = String(lockTTL.milliseconds)
        let reply = try await withRetries(giveUpAfter: giveUpAfter) {
            try await connection.evalsha(context.scripts.claim, keys: [keyspace.processed, keyspace.stream, keyspace.deadBits]) { command in
                command.append(keyspace.group)
                command.append(keyspace.lockPrefix)
                command.append(token)
                command.append(lockMilliseconds)
                for entry in entries {
                    command.append(entry.id)
                    command.append(entry.index)
                }
            }
        }
        guard let codes = reply.array, codes.count == entries.count else {
            throw RedisError(.protocolViolation, "claim script returned \(reply)")
        }
        return sortClaims(entries, codes: codes)
    }

    /// The entries the claim codes say were claimed (1); counts the others: already done (0), locked by another (2).
    func sortClaims(_ entries: [StreamEntry], codes: [RESPValue]) -> [StreamEntry] {
        var claimed: [StreamEntry] = []
        claimed.reserveCapacity(entries.count)
        var alreadyDone = 0
        var locked = 0
        for (entry, code) in zip(entries, codes) {
            switch code.int {
            case 1: claimed.append(entry)
            case 0: alreadyDone += 1
            default: locked += 1
            }
        }
        if alreadyDone + locked > 0 {
            counters.update {
                $0.duplicateDeliveries += alreadyDone
                $0.lockSkips += locked
            }
        }
        return claimed
    }

    /// Commits the keys whose work succeeded; hands back or dead-letters the others. `token` is the claim's
    /// lock token; `record` names this settle call's record (one per call, so a retry is answered, not redone).
    /// With `read`, the same call reads up to `read.count` new entries and claims them under `read.token`.
    /// Returns the entries handed back to this consumer for another delivery, and the new entries claimed.
    func settleBatch(_ claimed: [StreamEntry], succeeded: [Bool], token: String, record: String,
                     read: (count: Int, token: String)? = nil) async throws -> (handedBack: [StreamEntry], next: [StreamEntry]) {
        let reading = read.map { $0.count > 0 } ?? false
        let reply = try await settleCall(claimed, succeeded: succeeded, token: token, record: record, read: reading ? read : nil)
        let settled = reading ? reply.array?.first ?? .null : reply
        let handedBack = try countSettled(claimed, succeeded: succeeded, reply: settled)
        guard reading else { return (handedBack, []) }
        return (handedBack, try entriesRead(reply))
    }

    /// Reads up to `read.count` new entries and claims them under `read.token`: the settle-and-read script with
    /// nothing to settle, which writes no commit record (so it may go out while a settle is in flight).
    func readNext(_ read: (count: Int, token: String)) async throws -> [StreamEntry] {
        guard read.count > 0 else { return [] }
        return try entriesRead(try await settleCall([], succeeded: [], token: read.token, record: "\(read.token)/read", read: read))
    }

    /// One call of the commit script, or with `read` of the settle-and-read script, retried up to `--timeout`.
    private func settleCall(_ claimed: [StreamEntry], succeeded: [Bool], token: String, record: String,
                            read: (count: Int, token: String)?) async throws -> RESPValue {
        let settings = context.settings.consumer
        return try await withRetries(giveUpAfter: giveUpAfter) {
            try await connection.evalsha(read == nil ? context.scripts.commit : context.scripts.settleAndRead,
                                         keys: [keyspace.processed, keyspace.stream, keyspace.commitRecords,
                                                keyspace.deadBits, keyspace.deadLetters, keyspace.tally]) { command in
                command.append(keyspace.group)
                command.append(keyspace.lockPrefix)
                command.append(token)
                command.append(record)
                command.append(settings.maxDeliveries)
                command.append(stats.name)
                if let read {
                    command.append(read.count)
                    command.append(read.token)
                    command.append(String(lockTTL.milliseconds))
                }
                for (entry, ok) in zip(claimed, succeeded) {
                    command.append(entry.id)
                    command.append(entry.index)
                    command.append(Int(entry.deadline))
                    command.append(ok ? 1 : 0)
                }
            }
        }
    }

    /// The entries a settle-and-read call read, those it claimed.
    private func entriesRead(_ reply: RESPValue) throws -> [StreamEntry] {
        guard let parts = reply.array, parts.count == 3 else {
            throw RedisError(.protocolViolation, "settle-and-read script returned \(reply)")
        }
        let entries = (parts[1].array ?? []).compactMap(StreamEntry.init)
        let codes = parts[2].array ?? []
        guard codes.count == entries.count else {
            throw RedisError(.protocolViolation, "settle-and-read script returned \(codes.count) claim codes for \(entries.count) entries")
        }
        if !entries.isEmpty { context.gauges.update(stats.shard) { $0.delivered += entries.count } }
        return sortClaims(entries, codes: codes)
    }

    /// Reads the commit script's reply: records latencies and counts; returns the entries handed back.
    func countSettled(_ claimed: [StreamEntry], succeeded: [Bool], reply: RESPValue) throws -> [StreamEntry] {
        guard let codes = reply.array, codes.count == claimed.count + 1, let serverMicroseconds = codes[0].int else {
            throw RedisError(.protocolViolation, "commit script returned \(reply)")
        }
        var latencies: [Int64] = []
        latencies.reserveCapacity(claimed.count)
        var deadlines: [Int64] = []
        var handedBack: [StreamEntry] = []
        var repeats = 0, fenced = 0, dead = 0
        var firsts: [Int] = []
        for (entry, code) in zip(claimed, codes.dropFirst()) {
            switch code.int {
            case 1:
                firsts.append(entry.index)
                latencies.append(serverMicroseconds - entry.deadline * 1000)
                if context.stages != nil { deadlines.append(entry.deadline) }
            case 2: repeats += 1
            case 3: handedBack.append(entry)
            case 4: dead += 1
            default: fenced += 1
            }
        }
        if !latencies.isEmpty {
            context.latencies.record(microseconds: latencies)
            context.stages?.record(deadlines: deadlines, microseconds: latencies)
            context.settings.observeLatencies?(latencies)
            stats.processed.add(latencies.count, ordering: .relaxed)
        }
        let (committed, redelivered) = (latencies.count, handedBack.count)
        let failures = succeeded.count - succeeded.filter { $0 }.count
        let confirmedTwice = firsts.isEmpty ? 0 : context.confirmed.note(firsts)
        // One lock for the whole outcome: this runs once per settle of every consumer.
        counters.update {
            $0.committed += committed
            $0.confirmedTwice += confirmedTwice
            $0.settles += 1
            $0.duplicateCommits += repeats
            $0.fencedCommits += fenced
            $0.deadLettered += dead
            $0.redeliveries += redelivered
            $0.failedWork += failures
        }
        return handedBack
    }
}
