import RedisClient

/// One member of the run's consumer group, on a connection of its own (it blocks in XREADGROUP, so it must
/// never share a connection with anything else).
///
/// Loop: read a batch (XREADGROUP COUNT BLOCK), claim it (one script: skip processed keys, lock the others),
/// do the simulated work (`work` per key, `concurrency` keys at a time, an async sleep, failing with
/// `--fail-rate`), settle it (one script: commit, redeliver or dead-letter each key, fenced by its lock), in
/// chunks every `--commit-every` of work. While the work goes on, the settles are in flight and the next batch
/// is read and claimed (one script), so a busy consumer never waits for a round trip. Between batches it takes
/// over the entries of consumers whose lease lapsed (XPENDING + XCLAIM) and, when entries sit idle past
/// `reclaimIdle`, reclaims them (XAUTOCLAIM).
package struct StreamConsumer: Sendable {
    let connection: RedisConnection
    let context: PipelineContext
    package let stats: ConsumerStats
    let batch: Int
    let work: Duration
    let concurrency: Int
    let failRate: Double
    let lockTTL: Duration
    let commitEvery: Duration
    let consumers: Int
    let giveUpAfter: Duration
    /// The shard whose stream it reads.
    let keyspace: ShardKeyspace
    /// Where its entries come from.
    let intake: ConsumerIntake

    package init(connection: RedisConnection, context: PipelineContext, stats: ConsumerStats) {
        let settings = context.settings.consumer
        self.keyspace = context.layout.shards[stats.shard]
        self.connection = connection
        self.context = context
        self.stats = stats
        self.batch = settings.batch
        self.work = settings.work
        self.concurrency = settings.concurrency
        self.failRate = settings.failRate
        self.lockTTL = settings.lockTTL
        self.commitEvery = settings.commitEvery
        // Consumers of this process reading the same shard (those of other processes are not known here).
        self.consumers = max(1, (context.settings.consumers + context.layout.shards.count - 1) / context.layout.shards.count)
        self.giveUpAfter = context.settings.timeout
        self.intake = ConsumerIntake(connection: connection, context: context, stats: stats, keyspace: keyspace, batch: settings.batch,
                                     reclaimIdle: settings.reclaimIdle)
    }

    var counters: RunCounters { context.counters }

    /// `run`, and when chaos crashes the consumer, drops its connection without acking anything (a crash).
    /// Either way the consumer is no longer alive afterwards: its lease is not renewed.
    package func runUntilStoppedOrCrashed(shouldStop: @Sendable () -> Bool) async throws {
        defer { stats.alive.set(false) }
        do {
            try await run(shouldStop: shouldStop)
        } catch is ConsumerCrashed {
            connection.close()
        }
    }

    /// Consumes until `shouldStop` says so; returns after the batch in hand is settled. Throws when Redis has
    /// been unreachable for longer than `--timeout`, or `ConsumerCrashed` when chaos kills it.
    package func run(shouldStop: @Sendable () -> Bool) async throws {
        var lastReclaim = ContinuousClock.now
        var claimSequence = 0
        // Entries this consumer already owns, to work on first: keys handed back after a failure, and what did
        // not fit in the previous batch. A batch never exceeds `batch`, so its work always fits in its locks.
        var carried: [StreamEntry] = []
        // The next batch, already read and claimed while the last one was finished (see `work`).
        var ready: [StreamEntry] = []
        // The last batch's final settle, when it is still in flight: the next settle waits for it.
        var inFlight: SettleInFlight?
        var failingSince: ContinuousClock.Instant?
        // Entries claimed are always worked on and settled, even once asked to stop.
        while !shouldStop() || !ready.isEmpty {
            if stats.crash.isSet {
                await Self.drain(inFlight)
                throw ConsumerCrashed()
            }
            do {
                let token = "\(stats.name):\(claimSequence + 1)"
                let nextToken = "\(stats.name):\(claimSequence + 2)"
                let next = { nextRead(token: nextToken, carriedNothing: carried.isEmpty, stopping: shouldStop()) }
                let outcome: BatchOutcome
                if !ready.isEmpty {
                    let claimed = ready
                    ready = []
                    claimSequence += 1
                    outcome = try await work(claimed, token: token, after: inFlight, next: next)
                } else {
                    // Nothing in hand to overlap with: the last settle first (a blocking read must not hold it up).
                    if let settling = inFlight {
                        inFlight = nil
                        carried += try await settling.value
                    }
                    let entries = try await intake.next(carried: &carried, count: readCount, lastReclaim: &lastReclaim)
                    failingSince = nil
                    if entries.isEmpty { continue }
                    claimSequence += 1
                    outcome = try await process(entries, token: token, next: next)
                }
                failingSince = nil
                carried += outcome.handedBack
                inFlight = outcome.inFlight
                // Claimed under `nextToken`, which is the next turn's `token`.
                ready = outcome.next
            } catch let error as RedisError where error.isTransient {
                // The entries in hand stay pending: they are reclaimed once idle, and the claim and commit
                // scripts make a redo safe. Back off, then the next call reconnects.
                await Self.drain(inFlight)
                inFlight = nil
                ready = []
                try await backOff(after: error, failingSince: &failingSince)
            } catch {
                await Self.drain(inFlight)
                throw error
            }
        }
        // As when a settle fails mid-run: its entries stay pending (the verification says so if the run ends).
        do { _ = try await inFlight?.value } catch { counters.add(\.consumerErrors, 1) }
    }

    /// After a transient failure: counts it and waits 50 to 250 ms; throws it once failures have lasted longer
    /// than `--timeout`.
    private func backOff(after error: RedisError, failingSince: inout ContinuousClock.Instant?) async throws {
        let now = ContinuousClock.now
        if let since = failingSince, now - since > giveUpAfter { throw error }
        if failingSince == nil { failingSince = now }
        counters.add(\.consumerErrors, 1)
        try await Task.sleep(for: .milliseconds(Int.random(in: 50...250)))
    }

    /// What is read and claimed for the next batch, asked as a batch's last keys start (where the consumer does
    /// not overlap, by its final settle): nothing (the usual read path then runs) when the consumer must stop, has
    /// keys handed back to redo, or has a dead consumer's entries or idle entries to take over first; else its
    /// fair share under `token`.
    func nextRead(token: String, carriedNothing: Bool, stopping: Bool) -> (count: Int, token: String)? {
        guard carriedNothing, !stopping, !stats.crash.isSet, !context.orphans.has(shard: stats.shard), !context.gauges[stats.shard].idle else { return nil }
        return (readCount, token)
    }

    /// The most rounds of work (keys, at `--concurrency 1`) a consumer reads at once while it has work to do.
    /// Measured at `--rate 10000 --sweeper off` (DESIGN.md section 5): with the overlap of round trips, p99 went
    /// from a median of 315 ms to 242 ms over six alternated runs; 4 saturated once on a loaded machine.
    static let shareRounds = 8

    /// How many rounds before the end of a batch the next one is read: two keys of 5 ms cover a read's round trip
    /// under load (about 9 ms here), so the consumer does not wait for it.
    static let readAheadRounds = 2

    /// How many entries to ask for. With work to do, a consumer takes its fair share of the undelivered backlog
    /// (at least `concurrency`, at most `batch`), and no more than `shareRounds` rounds of work: when a burst of
    /// expired events arrives, its oldest entries (the bridge publishes in deadline order) spread over all
    /// consumers instead of queueing behind one consumer's slice, which is what keeps latency low below
    /// saturation. With `--work 0` a whole batch costs no more time than one key, so it always asks for a batch.
    var readCount: Int {
        let backlog = context.gauges[stats.shard].backlog
        guard work > .zero, backlog >= 0 else { return batch }
        let share = (backlog + consumers - 1) / max(1, consumers)
        // Far behind (saturated: more than 4 slices each waiting), slices no longer shorten anyone's wait, and
        // whole batches take fewer round trips.
        let slice = Self.shareRounds * concurrency
        return min(batch, max(concurrency, share > 4 * slice ? share : min(share, slice)))
    }
}
