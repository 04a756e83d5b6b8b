import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

extension Scenarios {
    /// Runs that share a server share `notify-keyspace-events`: the first to end leaves the events on for the
    /// others, the last puts the original value back, and `cleanup` of a run killed outright does what it could not.
    @Suite(.serialized)
    struct SharedSettingTests {
        /// A run of `keys` keys at `rate` keys/s with run id `id`.
        func run(_ server: EmbeddedRedis, id: String, keys: Int, rate: Int) -> [String] {
            ["--redis", tcpURL(server), "--keys", String(keys), "--rate", String(rate), "--consumers", "4", "--work", "0",
             "--run-id", id, "--progress", "none", "--timeout", "5s", "--stall-timeout", "20s", "--max-duration", "60s"]
        }

        /// Waits until run `id` has its consumers connected (it has joined the record by then).
        func waitForConsumers(of id: String, on control: RedisConnection) async -> Bool {
            await waitUntil(.seconds(20)) {
                ((try? await clientIDs(named: "expiry-bench:\(id):consumer-0", on: control)) ?? []).isEmpty == false
            }
        }

        @Test func overlappingRunsKeepTheEventsOnUntilTheLastEnds() async throws {
            try await withRedis { server in
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                try await control.send("CONFIG", "SET", "notify-keyspace-events", "")
                async let first = runExpiryBench(run(server, id: "first", keys: 3000, rate: 1500))
                #expect(await waitForConsumers(of: "first", on: control), "the first run never started")
                let secondEnded = Shared(false)
                async let second = { [self] in
                    let result = try await runExpiryBench(run(server, id: "second", keys: 15000, rate: 1500))
                    secondEnded.update { $0 = true }
                    return result
                }()
                #expect(await waitForConsumers(of: "second", on: control), "the second run never started")
                let firstResult = try await first
                #expect(firstResult.status == 0, "\(describe(firstResult))")
                #expect(firstResult.stdout.contains("1 other run on this server still uses it"), "\(describe(firstResult))")
                // The first run ended while the second still depends on the events: they stay on.
                let during = try await notifyKeyspaceEvents(control)
                #expect(!secondEnded.value, "the second run ended before the first: the check proves nothing")
                #expect(during.contains("E") && during.contains("x"), "setting while the second run goes: '\(during)'")
                let secondResult = try await second
                #expect(secondResult.status == 0, "\(describe(secondResult))")
                #expect(secondResult.stdout.contains("shared with 1 other run"), "\(describe(secondResult))")
                #expect(secondResult.stdout.contains("put back to ''"), "\(describe(secondResult))")
                #expect(try await notifyKeyspaceEvents(control) == "")
                #expect(try await control.send("DBSIZE") == .integer(0), "the record of the runs was left behind")
            }
        }

        @Test func cleanupOfAKilledRunPutsTheSettingBackWhenNoOtherRunNeedsIt() async throws {
            try await withRedis { server in
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                try await control.send("CONFIG", "SET", "notify-keyspace-events", "Kg")
                let before = try await notifyKeyspaceEvents(control)
                func killedRun(_ id: String) async throws {
                    // The binary itself (runExpiryBench fails a test on a death by signal, which is the point here).
                    let binary = try EndToEndTests.productsDirectory().appendingPathComponent("expiry-bench")
                    let result = try await runProgram(binary, run(server, id: id, keys: 500_000, rate: 5000), limit: .seconds(60)) { [self] process in
                        _ = await waitForConsumers(of: id, on: control)
                        kill(process.processIdentifier, SIGKILL)
                    }
                    #expect(!result.exitedNormally, "\(describe(result))")
                }
                // Killed while another run goes: its cleanup leaves the events on for that run.
                async let other = runExpiryBench(run(server, id: "other", keys: 12000, rate: 1500))
                #expect(await waitForConsumers(of: "other", on: control), "the other run never started")
                try await killedRun("killed1")
                let first = try await runExpiryBench(["cleanup", "--redis", tcpURL(server), "--run-id", "killed1", "--force"], limit: .seconds(20))
                #expect(first.status == 0, "\(describe(first))")
                #expect(first.stdout.contains("still use"), "\(describe(first))")
                let during = try await notifyKeyspaceEvents(control)
                #expect(during.contains("E") && during.contains("x"), "setting while the other run goes: '\(during)'")
                let otherResult = try await other
                #expect(otherResult.status == 0, "\(describe(otherResult))")
                #expect(try await notifyKeyspaceEvents(control) == before)

                // Killed alone: the setting stays changed until cleanup, which puts it back.
                try await killedRun("killed2")
                let left = try await notifyKeyspaceEvents(control)
                #expect(left.contains("E") && left.contains("x"), "a killed run cannot restore: '\(left)'")
                let second = try await runExpiryBench(["cleanup", "--redis", tcpURL(server), "--run-id", "killed2", "--force"], limit: .seconds(20))
                #expect(second.status == 0, "\(describe(second))")
                #expect(second.stdout.contains("put back to '\(before)'"), "\(describe(second))")
                #expect(try await notifyKeyspaceEvents(control) == before)
                #expect(try await control.send("DBSIZE") == .integer(0))
            }
        }
    }
}
