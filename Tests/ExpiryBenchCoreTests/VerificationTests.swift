import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

@Suite("Verification verdicts")
struct VerificationTests {
    /// A run of 1000 keys where everything adds up.
    private func consistent(_ change: (inout Verification) -> Void = { _ in }) -> Verification {
        var verification = Verification(requested: 1000, generated: 1000, processedBits: 1000, firstCommitsCounted: 1000,
                                        duplicateCommits: 0, deadLettered: 0, pending: 0, due: 0)
        change(&verification)
        return verification
    }

    @Test func allConsistentIsExactlyOnce() {
        let verification = consistent()
        #expect(verification.verdict == .exactlyOnce)
        #expect(verification.problems == [])
        #expect(verification.lost == 0)
        #expect(verification.interrupted == false)
        #expect(verification.stalledFor == nil)
    }

    @Test func lostKeys() {
        let verification = consistent { $0.processedBits = 997; $0.firstCommitsCounted = 997 }
        #expect(verification.lost == 3)
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["3 generated keys were never committed nor dead-lettered"])
    }

    @Test func deadLetteredKeysAreNotLost() {
        let verification = consistent { $0.processedBits = 990; $0.firstCommitsCounted = 990; $0.deadLettered = 10 }
        #expect(verification.lost == 0)
        #expect(!verification.problems.contains { $0.contains("never committed") })
    }

    @Test func lostNeverGoesNegative() {
        let verification = consistent { $0.deadLettered = 5 }
        #expect(verification.lost == 0)
    }

    @Test func duplicateCommits() {
        let verification = consistent { $0.duplicateCommits = 2 }
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["2 commits were repeats of keys already processed"])
    }

    @Test func pendingEntries() {
        let verification = consistent { $0.pending = 4 }
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["4 stream entries are still pending (delivered, never acknowledged)"])
    }

    @Test func keysLeftInDueIndex() {
        let verification = consistent { $0.due = 5 }
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["5 keys are still in the due index (never published)"])
    }

    @Test func countsThatDisagreeWithRedis() {
        let verification = consistent { $0.firstCommitsCounted = 999 }
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["consumers counted 999 first commits but Redis holds 1,000 processed keys"])
    }

    @Test func notEveryKeyGenerated() {
        let verification = consistent { $0.generated = 900; $0.processedBits = 900; $0.firstCommitsCounted = 900 }
        #expect(verification.verdict == .failed)
        // Keys never generated are not "lost": lost counts generated keys that reached no end.
        #expect(verification.lost == 0)
        #expect(verification.problems == ["only 900 of 1,000 keys were generated"])
    }

    @Test func stall() {
        let verification = consistent { $0.stalledFor = .seconds(30) }
        #expect(verification.verdict == .failed)
        #expect(verification.problems == ["no key was committed for 30s (--stall-timeout): the run stalled"])
    }

    @Test func everyProblemIsListedInOrder() {
        let verification = consistent {
            $0.generated = 990; $0.processedBits = 980; $0.firstCommitsCounted = 981; $0.duplicateCommits = 1
            $0.pending = 2; $0.due = 3; $0.stalledFor = .milliseconds(31_500)
        }
        #expect(verification.verdict == .failed)
        #expect(verification.problems == [
            "no key was committed for 31.5s (--stall-timeout): the run stalled",
            "only 990 of 1,000 keys were generated",
            "10 generated keys were never committed nor dead-lettered",
            "1 commits were repeats of keys already processed",
            "consumers counted 981 first commits but Redis holds 980 processed keys",
            "2 stream entries are still pending (delivered, never acknowledged)",
            "3 keys are still in the due index (never published)",
        ])
    }

    @Test func interruptedWinsOverProblems() {
        let clean = consistent { $0.interrupted = true }
        #expect(clean.verdict == .interrupted)

        let partial = Verification(requested: 1000, generated: 400, processedBits: 350, firstCommitsCounted: 350,
                                   duplicateCommits: 0, deadLettered: 0, pending: 12, due: 38, interrupted: true)
        #expect(partial.verdict == .interrupted)
        #expect(partial.lost == 50)
        #expect(partial.problems.count == 4)
    }

    @Test func verdictRawValuesAreTheReportSpelling() {
        #expect(RunReport.Verdict.exactlyOnce.rawValue == "exactly-once")
        #expect(RunReport.Verdict.failed.rawValue == "failed")
        #expect(RunReport.Verdict.interrupted.rawValue == "interrupted")
    }
}
