import RedisClient

/// The three steps of a batch: claim, work, settle.
extension StreamConsumer {
    /// Claims, works on and settles one batch; returns the entries handed back for another delivery, and the next
    /// batch when the final settle also read and claimed it (see `work`).
    func process(_ entries: [StreamEntry], token: String, next: () -> (count: Int, token: String)?) async throws -> (handedBack: [StreamEntry], next: [StreamEntry]) {
        let claimed = try await claimBatch(entries, token: token)
        if claimed.isEmpty { return ([], []) }
        return try await work(claimed, token: token, next: next)
    }

    /// Works on and settles a claimed batch; returns the entries handed back for another delivery, and the next
    /// batch, already claimed under `next`'s token, when `next` (asked when the batch is done) wants one.
    ///
    /// The simulated handler takes `work` per key, `concurrency` keys at a time, each failing with probability
    /// `failRate`. Deadlines are cumulative, so timer overshoot on one key is not added to the next. Finished keys
    /// are settled every `commitEvery` of work (and at the end), so a key waits for at most that long after its
    /// work, not for the whole batch: one round trip per `commitEvery`, never one per key. The final settle reads
    /// and claims the next batch in the same round trip.
    func work(_ claimed: [StreamEntry], token: String, next: () -> (count: Int, token: String)?) async throws -> (handedBack: [StreamEntry], next: [StreamEntry]) {
        let succeeded = claimed.map { _ in failRate == 0 || Double.random(in: 0..<1) >= failRate }
        let clock = ContinuousClock()
        let start = clock.now
        var lastSettle = start
        var settled = 0
        var chunk = 0
        var handedBack: [StreamEntry] = []
        var following: [StreamEntry] = []
        let rounds = work > .zero ? (claimed.count + concurrency - 1) / concurrency : 1
        for round in 1...rounds {
            if work > .zero { try await clock.sleep(until: start + work * round) }
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
            let settle = try await settleBatch(Array(claimed[settled..<done]), succeeded: Array(succeeded[settled..<done]),
                                               token: token, record: "\(token)/\(chunk)",
                                               read: done == claimed.count && !succeeded.contains(false) ? next() : nil)
            handedBack += settle.handedBack
            following = settle.next
            settled = done
            lastSettle = clock.now
        }
        return (handedBack, following)
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
        let settings = context.settings.consumer
        let reading = read.map { $0.count > 0 } ?? false
        let reply = try await withRetries(giveUpAfter: giveUpAfter) {
            try await connection.evalsha(reading ? context.scripts.settleAndRead : context.scripts.commit,
                                         keys: [keyspace.processed, keyspace.stream, keyspace.commitRecords,
                                                keyspace.deadBits, keyspace.deadLetters, keyspace.tally]) { command in
                command.append(keyspace.group)
                command.append(keyspace.lockPrefix)
                command.append(token)
                command.append(record)
                command.append(settings.maxDeliveries)
                command.append(stats.name)
                if let read, reading {
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
        let settled = reading ? reply.array?.first ?? .null : reply
        let handedBack = try countSettled(claimed, succeeded: succeeded, reply: settled)
        guard reading else { return (handedBack, []) }
        guard let parts = reply.array, parts.count == 3 else {
            throw RedisError(.protocolViolation, "settle-and-read script returned \(reply)")
        }
        let entries = (parts[1].array ?? []).compactMap(StreamEntry.init)
        let codes = parts[2].array ?? []
        guard codes.count == entries.count else {
            throw RedisError(.protocolViolation, "settle-and-read script returned \(codes.count) claim codes for \(entries.count) entries")
        }
        if !entries.isEmpty { context.gauges.update(stats.shard) { $0.delivered += entries.count } }
        return (handedBack, sortClaims(entries, codes: codes))
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
        for (entry, code) in zip(claimed, codes.dropFirst()) {
            switch code.int {
            case 1:
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
        // One lock for the whole outcome: this runs once per settle of every consumer.
        counters.update {
            $0.committed += committed
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
