import ExpiryPipeline

/// What the end of a run found in Redis, and the verdict that follows from it.
///
/// Every figure about Redis comes from `held`, what was read there; when Redis could not be read, `held` is nil and
/// `unreadable` says why: the figures are unknown, never the client's counts under Redis's name. A key that did not
/// end in a commit or a dead letter is either unprocessed (still in Redis, in the due index or the stream, when the
/// run stopped) or lost (Redis holds neither its commit nor its entry, or lost a commit it had confirmed).
package struct Verification: Sendable, Equatable {
    package var requested: Int
    /// Keys whose generation Redis confirmed to the generator.
    package var generated: Int
    /// What Redis held at the end; nil when it could not be read.
    package var held: Held?
    /// Why Redis could not be read at the end, if it could not: a sentence for the verdict, and its short form
    /// for each unknown figure.
    package var unreadable: String?
    package var unreadableCause: String?
    /// Confirmed first commits: the larger of the tallies' count (Redis's, every process) and the clients'.
    package var firstCommitsCounted: Int
    /// First commits confirmed to this process twice for the same key (Redis lost the first one).
    package var confirmedTwice = 0
    /// Keys whose first commit was confirmed to this process but that Redis no longer holds as processed (nil
    /// when not read: no key was left unfinished, or Redis could not be read).
    package var lostCommits: Int?
    package var interrupted: Bool
    package var stalledFor: Duration?
    /// Keys both committed and dead-lettered (must be none).
    package var committedAndDeadLettered = 0
    /// Why `committedAndDeadLettered` could not be counted (the server refused the BITOP that counts it).
    package var overlapUnknown: String?
    /// The cause, as Redis gave it, when the server refused the run's writes (NOREPLICAS, READONLY, OOM, MISCONF):
    /// one line with what to do, said in place of the component's failure.
    package var writesRefused: String?
    /// Processed keys of each shard, by shard index.
    package var processedPerShard: [Int] = []
    /// Set when the run's consumer group is gone from Redis: the server lost the run's data (restarted without
    /// persistence, flushed, failed over to a replica without it).
    package var dataLost: DataLoss?
    /// First commits confirmed to the clients (this process and the consumer processes that reported).
    package var clientsProcessed = 0
    /// First commits per consumer in the shards' tallies (every process); nil when they could not be read.
    package var commitsPerConsumer: [String: Int]?
    /// The first error a component of the run ended with, if any.
    package var componentFailure: String?
    /// The `--max-duration` the run exceeded, if it did.
    package var exceededMaxDuration: Duration?
    /// Set when `--abort-on-fail` stopped the run: the threshold that failed, and when.
    package var abortedBy: String?
    /// What Redis evicted during the run; nil when it was not read.
    package var evictions: Evictions?

    /// What Redis held of the run at its end, summed over the shards.
    package struct Held: Sendable, Equatable {
        /// Keys with their processed bit set.
        package var processed: Int
        /// Dead-letter entries.
        package var deadLettered: Int
        /// Keys still in the due index (never published).
        package var due: Int
        /// Stream entries delivered and never acknowledged.
        package var pending: Int
        /// Stream entries never delivered; nil when the server does not tell (before Redis 7.0) and no key was
        /// left unfinished.
        package var undelivered: Int?
        /// Commits the scripts found already done (the tallies' `dup`).
        package var repeats: Int
        /// Keys neither processed nor dead-lettered that are still in Redis (due, pending or undelivered) and whose
        /// commit was never confirmed: work left, not work lost.
        package var unprocessed: Int

        package init(processed: Int, deadLettered: Int, due: Int, pending: Int, undelivered: Int?, repeats: Int, unprocessed: Int) {
            (self.processed, self.deadLettered, self.due, self.pending) = (processed, deadLettered, due, pending)
            (self.undelivered, self.repeats, self.unprocessed) = (undelivered, repeats, unprocessed)
        }
    }

    /// Where the run's data was found missing, and what Redis said.
    package struct DataLoss: Sendable, Equatable {
        package var shard: String
        package var reason: String
    }

    package init(requested: Int, generated: Int, held: Held?, firstCommitsCounted: Int, interrupted: Bool = false, stalledFor: Duration? = nil) {
        self.requested = requested
        self.generated = generated
        self.held = held
        self.firstCommitsCounted = firstCommitsCounted
        self.interrupted = interrupted
        self.stalledFor = stalledFor
    }

    /// A verification from plain counts, every key not finished but in the due index or pending taken as
    /// unprocessed (what the tests build).
    package init(requested: Int, generated: Int, processedBits: Int, firstCommitsCounted: Int, duplicateCommits: Int,
                 deadLettered: Int, pending: Int, due: Int, interrupted: Bool = false, stalledFor: Duration? = nil) {
        let unprocessed = min(pending + due, max(0, generated - processedBits - deadLettered))
        self.init(requested: requested, generated: generated,
                  held: Held(processed: processedBits, deadLettered: deadLettered, due: due, pending: pending, undelivered: 0,
                             repeats: duplicateCommits, unprocessed: unprocessed),
                  firstCommitsCounted: firstCommitsCounted, interrupted: interrupted, stalledFor: stalledFor)
    }

    /// The report's fields that are unknown because Redis could not be read, each with why (nil when none).
    package var unknownFields: [String: String]? {
        var fields: [String: String] = [:]
        if let evictions, evictions.count == nil { fields["evicted_keys_during_run"] = evictions.unknown ?? "not read" }
        if held == nil {
            let reason = unreadableCause ?? "Redis could not be read at the end"
            for field in ["keys_processed", "lost", "unprocessed", "pending_at_end", "due_at_end", "duplicate_commits", "dead_lettered"] { fields[field] = reason }
        }
        return fields.isEmpty ? nil : fields
    }

    /// Redis's count of processed keys; nil when it could not be read.
    package var redisProcessed: Int? { held?.processed }

    /// Generated keys that Redis holds neither as committed, nor as dead-lettered, nor as work left (its entry
    /// in the due index or the stream), and keys whose confirmed commit Redis lost; nil when Redis was not read.
    package var lost: Int? {
        held.map { max(0, generated - $0.processed - $0.deadLettered - $0.unprocessed) }
    }

    /// Keys done twice: commits the scripts found already done, and first commits confirmed twice; nil when
    /// Redis's tallies could not be read.
    package var duplicateCommits: Int? { held.map { $0.repeats + confirmedTwice } }

    /// Every reason the run is not exactly-once; empty when it is.
    package var problems: [String] {
        var found: [String] = []
        if let abortedBy { found.append("stopped by --abort-on-fail: threshold \(abortedBy)") }
        if let exceededMaxDuration { found.append("the run was still going after --max-duration \(DurationText.format(exceededMaxDuration))") }
        if let componentFailure { found.append(writesRefused ?? "a component failed: \(componentFailure)") }
        if let unreadable { found.append(unreadable) }
        if let dataLost {
            if let evicted = evictions?.causeOfMissingData {
                found.append("the server lost the run's data: the run's consumer group is gone (\(dataLost.reason)); \(evicted)")
            } else {
                found.append("the server lost the run's data: the run's consumer group is gone (\(dataLost.reason)); it was restarted without persistence, flushed by someone, or failed over to a replica that lacked it")
            }
        }
        if let overlapUnknown { found.append("whether a key was both committed and dead-lettered is unknown: \(overlapUnknown)") }
        if committedAndDeadLettered > 0 { found.append("\(Format.count(committedAndDeadLettered)) keys were both committed and dead-lettered") }
        if let stalledFor { found.append("no key was committed for \(DurationText.format(stalledFor)) (--stall-timeout): the run stalled") }
        if generated < requested { found.append("only \(Format.count(generated)) of \(Format.count(requested)) keys were generated") }
        guard let held else { return found }
        found.append(contentsOf: heldProblems(held))
        return found
    }

    private func heldProblems(_ held: Held) -> [String] {
        var found: [String] = []
        if let lost, lost > 0 {
            let confirmed = (lostCommits ?? 0) > 0 ? " (\(Format.count(lostCommits ?? 0)) of them had a commit confirmed to a consumer)" : ""
            let evicted = evictions?.causeOfMissingData.map { "; \($0)" } ?? ""
            found.append("\(Format.count(lost)) generated keys are lost: Redis holds neither their commit nor their entry\(confirmed)\(evicted)")
        }
        if let doneTwice = duplicateCommits, doneTwice > 0 {
            var parts: [String] = []
            if held.repeats > 0 { parts.append("\(Format.count(held.repeats)) commits found the key already processed") }
            if confirmedTwice > 0 { parts.append("\(Format.count(confirmedTwice)) first commits were confirmed again after Redis lost the first") }
            found.append("\(Format.count(doneTwice)) keys were done twice: " + parts.joined(separator: "; "))
        }
        let explained = firstCommitsCounted - confirmedTwice - (lostCommits ?? 0)
        if explained != held.processed {
            found.append("consumers counted \(Format.count(firstCommitsCounted)) first commits but Redis holds \(Format.count(held.processed)) processed keys")
        }
        if held.unprocessed > 0 {
            let undelivered = held.undelivered.map { ", \(Format.count($0)) in the stream not yet delivered" } ?? ""
            found.append("\(Format.count(held.unprocessed)) keys were not processed when the run stopped, and are still in Redis (\(Format.count(held.due)) in the due index, \(Format.count(held.pending)) stream entries pending\(undelivered))")
        } else {
            if held.pending > 0 { found.append("\(Format.count(held.pending)) stream entries are still pending (delivered, never acknowledged)") }
            if held.due > 0 { found.append("\(Format.count(held.due)) keys are still in the due index (never published)") }
        }
        return found
    }

    /// Interrupted (unless a component failed first), else exactly-once when nothing is wrong, else failed.
    package var verdict: RunReport.Verdict {
        if interrupted && componentFailure == nil { return .interrupted }
        return problems.isEmpty ? .exactlyOnce : .failed
    }
}
