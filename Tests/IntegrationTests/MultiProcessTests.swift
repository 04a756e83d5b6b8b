import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

extension Scenarios {
    /// One run across several processes of the built binary: a driver and consumer processes that join it by
    /// `--run-id`. Judged by what a user sees: every process's exit code, and the driver's JSON report.
    @Suite(.serialized)
    struct MultiProcessTests {
        @Test func driverWithoutConsumersAndTwoConsumerProcessesProcessEveryKeyOnce() async throws {
            try await withRedis { server in
                let url = "redis://127.0.0.1:\(server.port)"
                let runID = "mp\(Int.random(in: 1000...9999))"
                let json = temporaryPath("multi.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let consumer = ["--redis", url, "--role", "consumer", "--run-id", runID, "--consumers", "6", "--progress", "none"]
                // The consumer processes start first and wait for the run; the driver has no consumers of its own.
                async let first = runExpiryBench(consumer, limit: .seconds(90))
                async let second = runExpiryBench(consumer, limit: .seconds(90))
                try await Task.sleep(for: .milliseconds(300))
                let driver = try await runExpiryBench(["--redis", url, "--role", "driver", "--consumers", "0", "--run-id", runID,
                                                       "--keys", "6000", "--work", "1ms", "--progress", "none", "--json", json,
                                                       "--stall-timeout", "20s", "--max-duration", "60s"], limit: .seconds(90))
                let (a, b) = try await (first, second)
                #expect(driver.status == 0, "\(describe(driver))")
                #expect(a.status == 0, "\(describe(a))")
                #expect(b.status == 0, "\(describe(b))")
                #expect(a.stdout.contains("Run \(runID) is complete"), "\(describe(a))")

                let report = try readJSONReport(json)
                #expect(report["verdict"] as? String == "exactly-once")
                #expect(report["keys_processed"] as? Int == 6000)
                #expect(report["duplicate_commits"] as? Int == 0)
                #expect(report["consumer_processes"] as? Int == 2)
                #expect(report["consumer_processes_reported"] as? Int == 2)
                // Every consumer of both processes has a row; their counts add up to every key.
                let rows = try #require(report["consumers"] as? [[String: Any]])
                #expect(rows.count == 12)
                #expect(rows.compactMap { $0["processed"] as? Int }.reduce(0, +) == 6000)
                #expect(Set(rows.compactMap { ($0["name"] as? String)?.split(separator: ".").first }).count == 2, "rows of two processes: \(rows)")
                // The latencies of the consumer processes reached the driver.
                let latency = try #require(report["latency_ms"] as? [String: Any])
                #expect(latency["count"] as? Int == 6000)

                // Nothing of the run is left.
                let connection = try await connect(server)
                defer { connection.close() }
                #expect(try await scanKeys(connection, match: "expiry-bench:\(runID):*").isEmpty)
            }
        }

        @Test func consumerProcessWithoutItsRunExits69NamingTheRun() async throws {
            try await withRedis { server in
                let result = try await runExpiryBench(["--redis", "redis://127.0.0.1:\(server.port)", "--role", "consumer", "--run-id", "nosuchrun",
                                                       "--join-timeout", "1s", "--progress", "none"], limit: .seconds(30))
                #expect(result.status == 69, "\(describe(result))")
                #expect(result.stderr.contains("nosuchrun"), "\(describe(result))")
                #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
            }
        }

        @Test(arguments: [
            (["--role", "consumer"], "--run-id"),
            (["--role", "consumer", "--run-id", "x", "--redis", "spawn"], "--redis"),
            (["--consumers", "0"], "--role driver"),
            (["--role", "driver", "--consumers", "-1"], "--consumers"),
            (["--shards", "0"], "--shards"),
            (["--run-id", "a@b"], "--run-id"),
        ])
        func roleMistakesExit64NamingTheFlag(arguments: [String], flag: String) async throws {
            let port = try EmbeddedRedis.freePort()
            // An address nothing listens on: the value must be refused before any connection is tried.
            let server = arguments.contains("--redis") ? [] : ["--redis", "redis://127.0.0.1:\(port)"]
            let result = try await runExpiryBench(server + ["--keys", "100", "--progress", "none"] + arguments, limit: .seconds(20))
            #expect(result.status == 64, "\(describe(result))")
            #expect(result.stderr.contains(flag), "\(describe(result))")
        }
    }
}
