import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

extension Scenarios {
    /// What a run leaves on the server when it is stopped from outside (issue 27, case 11): a SIGKILL mid-run.
    /// Judged by what Redis holds afterwards, read with SCAN and PTTL.
    @Suite(.serialized)
    struct LeftoverTests {
        /// The run's tally of finished keys, as the consumers' commit script keeps it.
        static func finished(_ runID: String, on control: RedisConnection) async -> Int {
            let reply = try? await control.send("HGET", "expiry-bench:\(runID):tally", "done")
            return reply?.string.flatMap { Int($0) } ?? 0
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
