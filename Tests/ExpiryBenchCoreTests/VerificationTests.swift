import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

@Suite("Verification verdicts")
struct VerificationTests {
    /// A run of 1000 keys, everything adding up unless the arguments say otherwise.
    private func verification(generated: Int = 1000, processed: Int = 1000, counted: Int? = nil, repeats: Int = 0, dead: Int = 0,
                              pending: Int = 0, due: Int = 0, interrupted: Bool = false) -> Verification {
        Verification(requested: 1000, generated: generated, processedBits: processed, firstCommitsCounted: counted ?? processed,
                     duplicateCommits: repeats, deadLettered: dead, pending: pending, due: due, interrupted: interrupted)
    }

    @Test func allConsistentIsExactlyOnce() {
        let verification = verification()
        #expect(verification.verdict == .exactlyOnce)
        #expect(verification.problems == [])
        #expect(verification.lost == 0)
        #expect(verification.interrupted == false)
        #expect(verification.stalledFor == nil)
    }

    @Test func keysInNoPlaceAreLost() {
        let verification = verification(processed: 997)
        #expect(verification.lost == 3)
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["3 generated keys are lost: Redis holds neither their commit nor their entry"])
    }

    @Test func keysStillInRedisAreUnprocessedNotLost() {
        let verification = verification(processed: 990, pending: 4, due: 6)
        #expect(verification.lost == 0)
        #expect(verification.held?.unprocessed == 10)
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["10 keys were not processed when the run stopped, and are still in Redis (6 in the due index, 4 stream entries pending, 0 in the stream not yet delivered)"])
    }

    @Test func aConfirmedCommitRedisLostIsLostAndExplainsTheCount() {
        var verification = verification(processed: 998, counted: 1000)
        verification.lostCommits = 2
        #expect(verification.lost == 2)
        #expect(verification.problems == ["2 generated keys are lost: Redis holds neither their commit nor their entry (2 of them had a commit confirmed to a consumer)"])
    }

    @Test func firstCommitsConfirmedTwiceAreKeysDoneTwice() {
        var verification = verification(counted: 1080)
        verification.confirmedTwice = 80
        #expect(verification.duplicateCommits == 80)
        #expect(verification.lost == 0)
        #expect(verification.problems == ["80 keys were done twice: 80 first commits were confirmed again after Redis lost the first"])
    }

    @Test func unreadableRedisLeavesEveryFigureUnknown() {
        var verification = Verification(requested: 1000, generated: 1000, held: nil, firstCommitsCounted: 600)
        (verification.unreadable, verification.unreadableCause) = Verification.unreadable(RedisError(.io, "Connection refused"), server: "127.0.0.1:6390")
        #expect(verification.lost == nil)
        #expect(verification.duplicateCommits == nil)
        #expect(verification.redisProcessed == nil)
        #expect(verification.verdict == .failed)
        #expect(verification.unknownFields?["pending_at_end"] == "Redis at 127.0.0.1:6390 could not be reached at the end")
        #expect(verification.problems.first?.hasPrefix("Redis at 127.0.0.1:6390 could not be reached to verify the run") == true)
    }

    @Test func refusedReadsAreNotCalledUnreachable() {
        let refused = Verification.unreadable(RedisError(.server, "BITCOUNT: NOREPLICAS Not enough good replicas to write.", serverMessage: "NOREPLICAS Not enough good replicas to write."), server: "h:1")
        #expect(refused.sentence.hasPrefix("Redis at h:1 refused the verification's reads (NOREPLICAS"))
        #expect(!refused.sentence.contains("could not be reached"))
    }

    @Test func deadLetteredKeysAreNotLost() {
        let verification = verification(processed: 990, dead: 10)
        #expect(verification.lost == 0)
        #expect(!verification.problems.contains { $0.contains("lost") })
    }

    @Test func lostNeverGoesNegative() {
        #expect(verification(dead: 5).lost == 0)
    }

    @Test func duplicateCommits() {
        let verification = verification(repeats: 2)
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["2 keys were done twice: 2 commits found the key already processed"])
    }

    @Test func pendingEntriesOfFinishedKeys() {
        let verification = verification(pending: 4)
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["4 stream entries are still pending (delivered, never acknowledged)"])
    }

    @Test func countsThatDisagreeWithRedis() {
        let verification = verification(counted: 999)
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["consumers counted 999 first commits but Redis holds 1,000 processed keys"])
    }

    @Test func notEveryKeyGenerated() {
        let verification = verification(generated: 900, processed: 900)
        #expect(verification.verdict == .failed)
        // Keys never generated are not "lost": lost counts generated keys that reached no end.
        #expect(verification.lost == 0)
        #expect(verification.problems == ["only 900 of 1,000 keys were generated"])
    }

    @Test func stall() {
        var verification = verification()
        verification.stalledFor = .seconds(30)
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["no key was committed for 30s (--stall-timeout): the run stalled"])
    }

    @Test func everyProblemIsListedInOrder() {
        var verification = verification(generated: 990, processed: 980, counted: 981, repeats: 1, pending: 2, due: 3)
        verification.stalledFor = .milliseconds(31_500)
        #expect(verification.verdict == .failed)
        #expect(verification.problems == [
            "no key was committed for 31.5s (--stall-timeout): the run stalled",
            "only 990 of 1,000 keys were generated",
            "5 generated keys are lost: Redis holds neither their commit nor their entry",
            "1 keys were done twice: 1 commits found the key already processed",
            "consumers counted 981 first commits but Redis holds 980 processed keys",
            "5 keys were not processed when the run stopped, and are still in Redis (3 in the due index, 2 stream entries pending, 0 in the stream not yet delivered)",
        ])
    }

    @Test func interruptedWinsOverProblems() {
        #expect(verification(interrupted: true).verdict == .interrupted)
        let partial = Verification(requested: 1000, generated: 400, processedBits: 350, firstCommitsCounted: 350,
                                   duplicateCommits: 0, deadLettered: 0, pending: 12, due: 38, interrupted: true)
        #expect(partial.verdict == .interrupted)
        // Keys still in Redis when a run is stopped are work left, not lost.
        #expect(partial.lost == 0)
        #expect(partial.held?.unprocessed == 50)
        #expect(partial.problems.count == 2)
    }

    @Test func verdictRawValuesAreTheReportSpelling() {
        #expect(RunReport.Verdict.exactlyOnce.rawValue == "exactly-once")
        #expect(RunReport.Verdict.failed.rawValue == "failed")
        #expect(RunReport.Verdict.interrupted.rawValue == "interrupted")
    }
}

/// What Redis evicted during the run, from two readings of INFO.
@Suite struct EvictionsTests {
    @Test func countIsTheDifferenceOrUnknownWithItsReason() {
        let counted = Evictions(start: .init(evictedKeys: 10, policies: ["allkeys-lru"]), end: .init(evictedKeys: 1_010, policies: ["allkeys-lru"]))
        #expect(counted.count == 1_000 && counted.policy == "allkeys-lru")
        #expect(counted.line?.hasPrefix("1,000 during the run under maxmemory-policy allkeys-lru: Redis removed keys of any owner, the user's included") == true)
        let reset = Evictions(start: .init(evictedKeys: 50, policies: ["volatile-lru"]), end: .init(evictedKeys: 3, policies: ["volatile-ttl"]))
        #expect(reset.count == nil && reset.policy == "volatile-lru → volatile-ttl")
        #expect(reset.unknown?.contains("went down from 50 to 3") == true)
        let refused = Evictions(start: .init(evictedKeys: nil, policies: [], unreadable: "INFO stats refused at h:1: NOPERM"), end: .init(evictedKeys: 5, policies: ["noeviction"]))
        #expect(refused.count == nil && refused.line == nil, "no line under noeviction")
        let none = Evictions(start: .init(evictedKeys: 5, policies: ["noeviction"]), end: .init(evictedKeys: 5, policies: ["noeviction"]))
        #expect(none.count == 0 && none.line == nil && none.causeOfMissingData == nil)
    }

    @Test func missingDataIsBlamedOnEvictionWhenRedisEvicted() {
        var verification = Verification(requested: 10, generated: 10, held: nil, firstCommitsCounted: 0)
        verification.dataLost = .init(shard: "s", reason: "NOGROUP")
        #expect(verification.problems.contains { $0.contains("restarted without persistence") })
        verification.evictions = Evictions(count: 7, policy: "volatile-lru")
        #expect(verification.problems.contains { $0.contains("Redis evicted 7 keys during the run under maxmemory-policy volatile-lru") })
        #expect(!verification.problems.contains { $0.contains("restarted without persistence") })
        verification.evictions = Evictions(count: nil, policy: "allkeys-lru", unknown: "INFO refused")
        #expect(verification.unknownFields?["evicted_keys_during_run"] == "INFO refused")
    }

    @Test func preflightSaysWhichKeysAPolicyCanEvict() {
        #expect(Preflight.evictionWarning(policy: "noeviction") == nil)
        #expect(Preflight.evictionWarning(policy: "volatile-ttl")?.contains("every key of the run carries a TTL but its locks") == true)
        #expect(Preflight.evictionWarning(policy: "allkeys-random")?.contains("the user's keys included") == true)
    }
}
