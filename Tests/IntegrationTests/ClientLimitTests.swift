import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

extension Scenarios {
    /// A server at its client limit (`maxclients`), through the built binary: refused before anything is written
    /// when the preflight can tell, refused during setup when it cannot, and reached mid-run. Each time one line
    /// names the server, the limit and what to do, the exit code is 78, and Redis holds nothing of the run with
    /// its `notify-keyspace-events` as it was.
    @Suite(.serialized)
    struct ClientLimitTests {
        /// What a test checks in Redis after the run: the user's key alone, and the setting as it was.
        func expectLeftAsFound(_ observer: RedisConnection, runID: String, setting: String) async throws {
            #expect(try await scanKeys(observer, match: "expiry-bench:\(runID):*") == [], "keys of the run are left")
            #expect(try await scanKeys(observer, match: "expiry-bench:*") == [], "bookkeeping of the runs is left")
            #expect(try await observer.send("GET", "user:keep-me") == .bulk("mine"))
            #expect(try await notifyKeyspaceEvents(observer) == setting)
        }

        @Test func aRunThatCannotFitIsRefusedBeforeWritingAnything() async throws {
            try await withRedis(extraArguments: ["--maxclients", "50"]) { server in
                let observer = try await connect(server, name: "itest-observer")
                defer { observer.close() }
                try await observer.send("SET", "user:keep-me", "mine")
                try await observer.send("CONFIG", "SET", "notify-keyspace-events", "Kg")
                let setting = try await notifyKeyspaceEvents(observer)
                // The defaults: 64 consumers, 74 connections in all.
                let result = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "20000", "--run-id", "fit1", "--progress", "none",
                                                       "--timeout", "5s"], limit: .seconds(30))
                #expect(result.status == 78, "\(describe(result))")
                let lines = result.stderr.split(whereSeparator: \.isNewline)
                #expect(lines.count == 1, "one line: \(describe(result))")
                #expect(result.stderr.contains("127.0.0.1:\(server.port)") && result.stderr.contains("at most 50 clients (maxclients)")
                        && result.stderr.contains("needs 74 connections") && result.stderr.contains("--consumers"), "\(describe(result))")
                #expect(!result.stdout.contains("notify-keyspace-events"), "the setting was touched: \(result.stdout)")
                try await expectLeftAsFound(observer, runID: "fit1", setting: setting)
            }
        }

        /// A user who may read neither INFO nor CONFIG: the preflight cannot see the limit, so the server's refusal
        /// of a connection during setup is what ends the run.
        @Test func aConnectionRefusedDuringSetupEndsTheRunWithTheSameLine() async throws {
            try await withRedis(extraArguments: ["--maxclients", "30"]) { server in
                let observer = try await connect(server, name: "itest-observer")
                defer { observer.close() }
                try await observer.send("ACL", "SETUSER", "bench", "on", ">pw-bench", "~expiry-bench:*", "~user:*", "&*", "+@all", "-@dangerous")
                try await observer.send("SET", "user:keep-me", "mine")
                try await observer.send("CONFIG", "SET", "notify-keyspace-events", "Ex")
                let result = try await runExpiryBench(["--redis", "redis://bench:pw-bench@127.0.0.1:\(server.port)", "--keys", "20000", "--consumers", "40",
                                                       "--run-id", "setup1", "--progress", "none", "--timeout", "5s"], limit: .seconds(30))
                #expect(result.status == 78, "\(describe(result))")
                let errors = result.stderr.split(whereSeparator: \.isNewline).filter { $0.contains("error:") }
                #expect(errors.count == 1, "one line: \(describe(result))")
                #expect(result.stderr.contains("127.0.0.1:\(server.port) refused a connection: max number of clients reached")
                        && result.stderr.contains("maxclients could not be read") && result.stderr.contains("needs 50 connections"), "\(describe(result))")
                #expect(!result.stderr.contains("password") && !result.stderr.contains("pw-bench"))
                try await expectLeftAsFound(observer, runID: "setup1", setting: "xE")
            }
        }

        /// The limit lowered during a run, then 20 consumers' connections killed: their reconnections are refused.
        @Test func theLimitReachedMidRunEndsItNamingTheCauseAndLeavesNothing() async throws {
            try await withRedis { server in
                let observer = try await connect(server, name: "itest-observer")
                defer { observer.close() }
                try await observer.send("SET", "user:keep-me", "mine")
                let runID = "mid1"
                let killed = Shared(0)
                let result = try await runExpiryBench(
                    ["--redis", tcpURL(server), "--keys", "200000", "--rate", "5000", "--run-id", runID, "--progress", "none",
                     "--timeout", "5s", "--stall-timeout", "20s", "--max-duration", "60s"], limit: .seconds(60)
                ) { _ in
                    _ = await waitUntil(.seconds(20)) {
                        ((try? await clientIDs(named: "expiry-bench:\(runID):consumer-63", on: observer)) ?? []).isEmpty == false
                    }
                    try? await Task.sleep(for: .seconds(1))
                    _ = try? await observer.send("CONFIG", "SET", "maxclients", "40")
                    for index in 0..<20 {
                        for id in (try? await clientIDs(named: "expiry-bench:\(runID):consumer-\(index)", on: observer)) ?? [] {
                            if (try? await observer.send("CLIENT", "KILL", "ID", id)) != nil { killed.update { $0 += 1 } }
                        }
                    }
                }
                #expect(killed.value == 20, "the run's consumers were not all found: \(killed.value)")
                #expect(result.status == 78, "\(describe(result))")
                #expect(result.stdout.contains("Verdict: FAILED"), "\(describe(result))")
                let errors = result.stderr.split(whereSeparator: \.isNewline).filter { $0.contains("error:") }
                #expect(errors.count == 1, "one line: \(describe(result))")
                #expect(result.stderr.contains("127.0.0.1:\(server.port) refused a connection: max number of clients reached (maxclients 40)")
                        && result.stderr.contains("needs 74 connections") && result.stderr.contains("--consumers"), "\(describe(result))")
                try await expectLeftAsFound(observer, runID: runID, setting: "")
            }
        }

        /// The count the preflight compares with the free slots is what a run opens.
        @Test func theConnectionsCountedAreTheConnectionsARunOpens() async throws {
            try await withRedis { server in
                let observer = try await connect(server, name: "itest-observer")
                defer { observer.close() }
                let runID = "count1"
                let seen = Shared(0)
                let result = try await runExpiryBench(
                    ["--redis", tcpURL(server), "--keys", "10000", "--rate", "5000", "--consumers", "6", "--work", "1ms", "--run-id", runID, "--progress", "none",
                     "--timeout", "5s", "--probe-window", "1s"], limit: .seconds(60)
                ) { _ in
                    _ = await waitUntil(.seconds(20)) {
                        ((try? await clientIDs(named: "expiry-bench:\(runID):consumer-5", on: observer)) ?? []).isEmpty == false
                    }
                    try? await Task.sleep(for: .milliseconds(500))
                    let clients = Int(ServerFacts.field("connected_clients", in: (try? await observer.send("INFO", "clients").string) ?? "") ?? "") ?? 0
                    seen.update { $0 = clients - 1 }
                }
                #expect(result.status == 0, "\(describe(result))")
                var configuration = RunConfiguration()
                configuration.consumers = 6
                #expect(seen.value == PipelineParts.connectionCount(configuration, shards: 1, primaries: 1, cluster: false).connections)
            }
        }
    }
}
