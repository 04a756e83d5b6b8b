import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

extension Scenarios {
    /// `--threshold` and `--abort-on-fail` through the built binary, as a CI pipeline uses them: the exit code,
    /// one line per failed threshold, and the JSON.
    @Suite(.serialized)
    struct ThresholdRunTests {
        func run(_ server: EmbeddedRedis, keys: Int = 3000, rate: Int = 0, _ extra: [String]) -> [String] {
            ["--redis", tcpURL(server), "--keys", String(keys), "--rate", String(rate), "--consumers", "4", "--work", "1ms",
             "--progress", "none", "--timeout", "5s", "--stall-timeout", "10s", "--max-duration", "60s"] + extra
        }

        @Test func aFailedThresholdExits99NamingItAndAMetOneExits0() async throws {
            try await withRedis { server in
                let json = temporaryPath("thresholds.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let failed = try await runExpiryBench(run(server, ["--threshold", "p99<1ms", "--threshold", "lost==0", "--json", json]))
                #expect(failed.status == 99, "\(describe(failed))")
                #expect(failed.stdout.contains("Verdict: exactly-once"), "the verdict is the run's own: \(describe(failed))")
                let lines = failed.stderr.split(separator: "\n").filter { $0.contains("threshold") }
                #expect(lines.count == 1 && lines[0].contains("threshold p99<1ms failed: p99 "), "\(describe(failed))")
                let report = try readJSONReport(json)
                let results = try #require(report["thresholds"] as? [[String: Any]])
                #expect(results.map { $0["threshold"] as? String } == ["p99<1ms", "lost==0"])
                #expect(results.map { $0["ok"] as? Bool } == [false, true])

                let met = try await runExpiryBench(run(server, ["--threshold", "p99<5s"]))
                #expect(met.status == 0, "\(describe(met))")
                #expect(met.stdout.contains("Thresholds: 1 of 1 passed."), "\(describe(met))")
            }
        }

        @Test func abortOnFailStopsTheRunEarlyAndCleansUp() async throws {
            try await withRedis { server in
                let started = ContinuousClock.now
                // 100,000 keys at 5,000/s would take 20 s; a p99 under 1 ms fails within the first seconds.
                let result = try await runExpiryBench(run(server, keys: 100_000, rate: 5000, ["--threshold", "p99<1ms", "--abort-on-fail"]))
                #expect(result.status == 99, "\(describe(result))")
                #expect(ContinuousClock.now - started < .seconds(15), "the run was not stopped early")
                #expect(result.stdout.contains("stopped by --abort-on-fail: threshold p99<1ms failed at"), "\(describe(result))")
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                #expect(try await control.send("DBSIZE") == .integer(0))
            }
        }
    }
}
