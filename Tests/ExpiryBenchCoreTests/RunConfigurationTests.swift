import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

@Suite("RunConfiguration defaults, batch sizing and validation")
struct RunConfigurationTests {
    private func configuration(_ change: (inout RunConfiguration) -> Void) -> RunConfiguration {
        var configuration = RunConfiguration()
        change(&configuration)
        return configuration
    }

    // MARK: Defaults

    @Test func defaults() {
        let configuration = RunConfiguration()
        #expect(configuration.server == .url(.localDefault, spawnIfAbsent: true))
        #expect(configuration.keys == 3_000_000)
        #expect(configuration.consumers == 64)
        #expect(configuration.ttl == .milliseconds(100))
        #expect(configuration.work == .milliseconds(5))
        #expect(configuration.lockTTL == .milliseconds(500))
        #expect(configuration.rate == 0)
        #expect(configuration.batch == nil)
        #expect(configuration.concurrency == 1)
        #expect(configuration.maxOutstanding == 0)
        #expect(configuration.namespace == "expiry-bench")
        #expect(configuration.runID == nil)
        #expect(configuration.keep == false)
        #expect(configuration.timeout == .seconds(10))
        #expect(configuration.stallTimeout == .seconds(30))
        #expect(configuration.jsonPath == nil)
        #expect(configuration.progress == .auto)
    }

    @Test func defaultConfigurationHasNoProblems() {
        #expect(RunConfiguration().problems() == [])
    }

    // MARK: effectiveBatch

    @Test func batchFromLockTTLAndWork() {
        #expect(configuration { $0.work = .milliseconds(5); $0.lockTTL = .milliseconds(500); $0.concurrency = 1 }.effectiveBatch == 50)
        #expect(configuration { $0.work = .milliseconds(5); $0.lockTTL = .milliseconds(500); $0.concurrency = 4 }.effectiveBatch == 200)
    }

    @Test func batchWithoutWorkIs256() {
        #expect(configuration { $0.work = .zero }.effectiveBatch == 256)
        #expect(configuration { $0.work = .zero; $0.concurrency = 16 }.effectiveBatch == 256)
    }

    @Test func explicitBatchWins() {
        #expect(configuration { $0.batch = 7 }.effectiveBatch == 7)
        #expect(configuration { $0.batch = 1000; $0.work = .zero }.effectiveBatch == 1000)
    }

    @Test func derivedBatchIsClampedTo1Through256() {
        #expect(configuration { $0.concurrency = 8 }.effectiveBatch == 256)
        #expect(configuration { $0.work = .seconds(1); $0.lockTTL = .milliseconds(500) }.effectiveBatch == 1)
    }

    @Test(arguments: [(1, 2, 1, 1), (3, 500, 1, 83), (10, 1000, 2, 100), (1, 100, 1, 50), (2, 1000, 1, 250)])
    func defaultBatchFormula(workMs: Int, lockMs: Int, concurrency: Int, expected: Int) {
        let batch = RunConfiguration.defaultBatch(work: .milliseconds(workMs), lockTTL: .milliseconds(lockMs), concurrency: concurrency)
        #expect(batch == expected)
    }

    @Test func derivedQuantities() {
        let base = RunConfiguration()
        #expect(base.batchWorkTime == .milliseconds(250))       // 50 keys × 5ms, one at a time
        #expect(base.pipelineSettings.consumer.reclaimIdle == .seconds(1))
        #expect(base.effectiveMaxOutstanding == 64 * 50 * 2 + 10_000)
        let parallel = configuration { $0.concurrency = 4 }
        #expect(parallel.batchWorkTime == .milliseconds(250))   // 200 keys, 4 at a time
        #expect(configuration { $0.maxOutstanding = 123 }.effectiveMaxOutstanding == 123)
        #expect(configuration { $0.consumers = 1 }.effectiveMaxOutstanding == 10_100)
    }

    // MARK: problems()

    @Test func negativeKeys() {
        let problems = configuration { $0.keys = -5 }.problems()
        #expect(problems == ["--keys must be between 1 and 1000000000 (got -5)"])
    }

    @Test func zeroConsumers() {
        let problems = configuration { $0.consumers = 0 }.problems()
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("--consumers must be between 1 and 4096") == true)
        #expect(problems.first?.contains("(got 0)") == true)
    }

    @Test(arguments: ["", "has space", "glob*", "what?", "br[acket", "{tag}", String(repeating: "n", count: 65)])
    func badNamespace(namespace: String) {
        let problems = configuration { $0.namespace = namespace }.problems()
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("--namespace must be 1 to 64 characters") == true)
    }

    @Test(arguments: ["bench", "team-a.expiry_bench:v2", String(repeating: "n", count: 64)])
    func goodNamespace(namespace: String) {
        #expect(configuration { $0.namespace = namespace }.problems() == [])
    }

    @Test func everyOutOfRangeFlagIsNamed() {
        let problems = configuration {
            $0.keys = 0; $0.consumers = 5000; $0.ttl = .zero; $0.work = .seconds(61); $0.lockTTL = .milliseconds(5)
            $0.rate = -1; $0.batch = 0; $0.concurrency = 0; $0.maxOutstanding = -1; $0.timeout = .milliseconds(50)
            $0.stallTimeout = .milliseconds(500); $0.namespace = "a b"
        }.problems()
        let flags = ["--keys", "--consumers", "--ttl", "--work", "--lock-ttl", "--rate", "--batch", "--concurrency",
                     "--max-outstanding", "--timeout", "--stall-timeout", "--namespace"]
        #expect(problems.count == flags.count)
        for (problem, flag) in zip(problems, flags) {
            #expect(problem.hasPrefix(flag + " must be"), "\(problem)")
        }
    }

    @Test func batchThatOutlivesHalfTheLockIsRejected() {
        let problems = configuration { $0.batch = 100 }.problems()   // 100 × 5ms = 500ms, lock 500ms
        #expect(problems == ["--batch 100 with --work 5ms and --concurrency 1 holds its locks for 500ms of work, which needs --lock-ttl 1s or more (twice the work, and 50ms above it); --lock-ttl is 500ms: raise it or lower --batch"])
    }

    @Test func lockConstraintHoldsAtTheBoundaryAndWithConcurrency() {
        #expect(configuration { $0.batch = 50 }.problems() == [])                       // 250ms, exactly half
        #expect(configuration { $0.batch = 51 }.problems().count == 1)                  // 255ms
        #expect(configuration { $0.batch = 100; $0.concurrency = 2 }.problems() == [])   // 50 rounds of 5ms
        #expect(configuration { $0.batch = 100; $0.lockTTL = .seconds(1) }.problems() == [])
        #expect(configuration { $0.batch = 10_000; $0.work = .zero }.problems() == [])  // no work, no lock time
    }

    @Test func lockConstraintIsOnlyReportedWhenEverythingElseIsValid() {
        let problems = configuration { $0.batch = 100; $0.keys = 0 }.problems()
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("--keys") == true)
    }

    // MARK: What joining processes take over

    @Test func sharedSettingsGoThroughTheMetaHashAndOwnSettingsStay() throws {
        let driver = configuration {
            $0.keys = 12_345; $0.ttl = .milliseconds(250); $0.work = .microseconds(1500); $0.lockTTL = .seconds(2)
            $0.concurrency = 4; $0.commitEvery = .milliseconds(20); $0.failRate = 0.05; $0.maxDeliveries = 5; $0.consumers = 8
        }
        let fields = RunMeta.fields(driver, layout: RunLayout(run: RunKeyspace(namespace: "n", runID: "r"), tags: [nil]))
        let meta = Dictionary(uniqueKeysWithValues: stride(from: 0, to: fields.count, by: 2).map { (fields[$0], fields[$0 + 1]) })
        #expect(meta["settings"]?.contains("\"work_us\":1500") == true, "\(meta["settings"] ?? "")")
        let own = configuration { $0.consumers = 3; $0.timeout = .seconds(4) }
        let joined = try RunMeta.joiningSettings(own, meta: meta)
        #expect(joined.consumer == driver.pipelineSettings.consumer)
        #expect(joined.consumer.work == .microseconds(1500) && joined.consumer.lockTTL == .seconds(2) && joined.consumer.concurrency == 4)
        #expect(joined.consumer.commitEvery == .milliseconds(20) && joined.consumer.failRate == 0.05 && joined.consumer.maxDeliveries == 5)
        #expect(joined.consumer.batch == driver.effectiveBatch)
        // The process's own consumer count and connection settings are its own.
        #expect(joined.consumers == 3 && joined.timeout == .seconds(4))
        #expect(throws: RunError.self) { try RunMeta.joiningSettings(own, meta: ["keys": "10", "work_ms": "5"]) }
    }
}

@Suite("RunConfiguration lock margin")
struct LockMarginTests {
    @Test func shortLocksNeedTheMarginToo() {
        var configuration = RunConfiguration()
        configuration.lockTTL = .milliseconds(40)
        configuration.work = .milliseconds(2)
        // Half of 40 ms would fit 10 keys, but 50 ms of margin leaves no room: the run is refused.
        #expect(configuration.problems().first?.contains("needs --lock-ttl 52ms or more") == true)
        #expect(configuration.problems().first?.hasSuffix("raise it") == true)
    }

    @Test func defaultBatchLeavesTheMargin() {
        // 100 ms lock, 5 ms work: half is 50 ms, the margin leaves 50 ms as well: 10 keys.
        #expect(RunConfiguration.defaultBatch(work: .milliseconds(5), lockTTL: .milliseconds(100), concurrency: 1) == 10)
        // 80 ms lock: the margin (30 ms left) is the tighter bound: 6 keys.
        #expect(RunConfiguration.defaultBatch(work: .milliseconds(5), lockTTL: .milliseconds(80), concurrency: 1) == 6)
    }
}
