import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

extension Scenarios {
    /// What a run leaves on the server when it is stopped from outside (issue 27, cases 9 and 11): a Ctrl-C on a
    /// driver whose consumers run in other processes, a SIGKILL mid-run, and keys under a prefix that no run owns.
    /// Judged by what Redis holds afterwards, read with SCAN and PTTL.
    @Suite(.serialized)
    struct LeftoverTests {
        /// The run's tally of finished keys, as the consumers' commit script keeps it.
        static func finished(_ runID: String, on control: RedisConnection) async -> Int {
            let reply = try? await control.send("HGET", "expiry-bench:\(runID):tally", "done")
            return reply?.string.flatMap { Int($0) } ?? 0
        }

        /// Once the run's meta hash is gone, a consumer's scripts write nothing: the commit after a removal
        /// answers `GONE` and nothing of the run comes back.
        @Test func scriptsOfARemovedRunWriteNothing() async throws {
            try await ProtocolFixture.with { fixture in
                try await fixture.generate(ttlMs: 1, first: 0, count: 5)
                #expect(try await fixture.publish(Array(0..<5)) == 5)
                let entries = try await fixture.readGroup(consumer: "a", count: 5)
                #expect(try await fixture.claim(token: "t1", entries) == [1, 1, 1, 1, 1])
                let gates = try await RunCleanup.gates(of: fixture.keyspace.run, on: fixture.connection)
                try await RunCleanup.removeKeys(of: fixture.keyspace.run, on: fixture.connection, gates: gates)
                for attempt in ["commit", "claim"] {
                    do {
                        if attempt == "commit" { _ = try await fixture.commit(token: "t1", entries) } else { _ = try await fixture.claim(token: "t2", entries) }
                        Issue.record("the \(attempt) script wrote to a removed run")
                    } catch let error as RedisError {
                        #expect(error.isRunGone, "\(attempt): \(error)")
                    }
                }
                #expect(try await scanKeys(fixture.connection, match: fixture.keyspace.run.prefix + "*") == [])
            }
        }

        /// Case 9: Ctrl-C on a driver without consumers while two consumer processes commit. Every try: the
        /// driver exits 130, both consumer processes stop (exit 1, one line naming the run), and no key of the run
        /// is left. 32 consumers a process, each with batches of up to 100 keys of 10 ms (a second of work), still
        /// commit well after the driver removed the run: before the consumers' scripts and lease renewals checked
        /// that the run's keys exist, 5 tries of 5 with these settings left `commits`, `tally`, `leases` and lease
        /// keys behind (3 of 9 with 5 ms of work and a 500 ms lock).
        @Test(arguments: 1...10)
        func ctrlCOnADriverWithConsumerProcessesLeavesNoKey(attempt: Int) async throws {
            try await withRedis { server in
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                let url = tcpURL(server)
                let runID = "ctrlc\(attempt)"
                let consumer = ["--redis", url, "--role", "consumer", "--run-id", runID, "--consumers", "32", "--progress", "none", "--join-timeout", "20s"]
                async let first = runExpiryBench(consumer, limit: .seconds(45))
                async let second = runExpiryBench(consumer, limit: .seconds(45))
                let committing = Shared(false)
                let driver = try await runExpiryBench(["--redis", url, "--role", "driver", "--consumers", "0", "--run-id", runID, "--keys", "200000",
                                                       "--rate", "20000", "--work", "10ms", "--lock-ttl", "2s", "--progress", "none", "--timeout", "5s",
                                                       "--stall-timeout", "20s"], limit: .seconds(45)) { process in
                    // Interrupted while the consumer processes commit, at a random moment: their commits race the
                    // driver's cleanup.
                    let found = await waitUntil(.seconds(20)) { await Self.finished(runID, on: control) > 500 }
                    committing.update { $0 = found }
                    try? await Task.sleep(for: .milliseconds(Int.random(in: 0...300)))
                    kill(process.processIdentifier, SIGINT)
                }
                let (a, b) = try await (first, second)
                #expect(committing.value, "the consumer processes never committed: \(describe(a))")
                #expect(driver.status == 130, "\(describe(driver))")
                for result in [a, b] {
                    #expect(result.status == 1, "\(describe(result))")
                    #expect(result.stderr.contains("run \(runID)"), "\(describe(result))")
                    #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
                }
                let left = try await scanKeys(control, match: "expiry-bench:\(runID):*")
                #expect(left == [], "keys of the run left after try \(attempt): \(left.prefix(10))")
            }
        }

        /// `cleanup` on keys under a run's prefix without its meta hash (what a consumer process could leave
        /// before the fix): refused without --force, one line naming it; removed with --force, and nothing else.
        @Test func cleanupForceRemovesAnOrphanedPrefix() async throws {
            try await withRedis { server in
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                let prefix = "expiry-bench:orphan1:"
                try await control.send("SET", "user:keep-me", "mine")
                try await control.send("SET", "expiry-bench:orphan10:k:1", "another run's")
                try await control.send("HSET", prefix + "commits", "consumer-1", "t|1")
                try await control.send("SETBIT", prefix + "processed", "9", "1")
                try await control.send("HINCRBY", prefix + "tally", "done", "3")
                try await control.send("SET", prefix + "lock:9", "1|t")
                let cleanup = ["cleanup", "--redis", tcpURL(server), "--run-id", "orphan1"]

                let refused = try await runExpiryBench(cleanup, limit: .seconds(20))
                #expect(refused.status == 64, "\(describe(refused))")
                #expect(refused.stderr.contains("--force") && refused.stderr.contains(prefix), "\(describe(refused))")
                #expect(refused.stderr.split(separator: "\n").count == 1, "one line: \(refused.stderr)")
                #expect(try await scanKeys(control, match: prefix + "*").count == 4)

                let forced = try await runExpiryBench(cleanup + ["--force"], limit: .seconds(20))
                #expect(forced.status == 0, "\(describe(forced))")
                #expect(forced.stdout.contains("Removed 4 keys"), "\(describe(forced))")
                #expect(try await scanKeys(control, match: prefix + "*") == [])
                #expect(try await control.send("GET", "user:keep-me") == .bulk("mine"))
                #expect(try await control.send("DBSIZE") == .integer(2))

                let nothing = try await runExpiryBench(cleanup + ["--force"], limit: .seconds(20))
                #expect(nothing.status == 64, "\(describe(nothing))")
                #expect(nothing.stderr.contains("no run 'orphan1'"), "\(describe(nothing))")
            }
        }

        /// Case 11: a run killed with SIGKILL mid-run. Every key it left carries a TTL but its locks (README, "Safe
        /// on a real server"), and `cleanup --force` (the driver beat within 15 s) removes them all.
        @Test func sigkilledRunLeavesOnlyKeysWithATTLButItsLocks() async throws {
            try await withRedis { server in
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                let runID = "killed11"
                let binary = try EndToEndTests.productsDirectory().appendingPathComponent("expiry-bench")
                let committing = Shared(false)
                // The binary itself: runExpiryBench fails a test on a death by signal, which is the point here.
                let result = try await runProgram(binary, ["--redis", tcpURL(server), "--run-id", runID, "--keys", "500000", "--rate", "20000",
                                                           "--consumers", "8", "--work", "2ms", "--progress", "none"], limit: .seconds(60)) { process in
                    let found = await waitUntil(.seconds(20)) { await Self.finished(runID, on: control) > 2000 }
                    committing.update { $0 = found }
                    kill(process.processIdentifier, SIGKILL)
                }
                #expect(!result.exitedNormally, "\(describe(result))")
                #expect(committing.value, "the run never committed: \(describe(result))")

                let keys = try await scanKeys(control, match: "expiry-bench:\(runID):*")
                var withoutTTL: [String] = []
                var kinds = Set<String>()
                for key in keys {
                    let ttl = try #require(try await control.send("PTTL", key).int)
                    let kind = String(key.dropFirst("expiry-bench:\(runID):".count).prefix { $0 != ":" })
                    if ttl == -1, kind != "lock" { withoutTTL.append(key) }
                    if ttl != -2 { kinds.insert(kind) }
                }
                #expect(withoutTTL == [], "keys without a TTL after a SIGKILL: \(withoutTTL)")
                // The bookkeeping keys were there to be checked.
                for kind in ["meta", "leases", "stream", "processed", "tally", "commits", "deadbits", "dead", "generated"] {
                    #expect(kinds.contains(kind), "no \(kind) key among \(kinds.sorted())")
                }

                let cleanup = try await runExpiryBench(["cleanup", "--redis", tcpURL(server), "--run-id", runID, "--force"], limit: .seconds(20))
                #expect(cleanup.status == 0, "\(describe(cleanup))")
                #expect(try await scanKeys(control, match: "expiry-bench:\(runID):*") == [])
            }
        }
    }
}
