import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

extension Scenarios {
    /// What a run prints and reports beside the verdict (issue 27, case 13 and smaller items), judged through the
    /// built binary and by what Redis holds after.
    @Suite(.serialized)
    struct QuietOutputTests {
        /// `--progress none` prints no status line; `footprint.ttl_keys_before` counts the user's keys with a TTL,
        /// never the run's `--background-keys`; and cleanup's warnings are one line each in the tool's format.
        @Test func progressNoneIsQuietAndTheFootprintBaselineIsTheUsers() async throws {
            try await withRedis { server in
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                for index in 0..<5 { try await control.send("SET", "user:\(index)", "kept", "EX", "3600") }
                let json = temporaryPath("progress-none.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let result = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "2000", "--consumers", "4", "--work", "1ms", "--background-keys", "1000",
                                                       "--probe-window", "2s", "--progress", "none", "--json", json], limit: .seconds(60))
                #expect(result.status == 0, "\(describe(result))")
                for status in ["Writing", "Progress:", "All keys are processed"] { #expect(!result.stdout.contains(status), "\(status) with --progress none: \(result.stdout)") }
                let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
                let footprint = try #require(report["footprint"] as? [String: Int])
                #expect(footprint["ttl_keys_before"] == 5, "\(footprint)")
                #expect((footprint["own_ttl_keys_peak"] ?? .max) < 1000, "the background keys are not the run's footprint: \(footprint)")
                #expect(try await control.send("DBSIZE") == .integer(5))

                let kept = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "500", "--consumers", "2", "--work", "0", "--keep", "--run-id", "kept27",
                                                     "--progress", "none"], limit: .seconds(60))
                #expect(kept.status == 0, "\(describe(kept))")
                try await control.send("ACL", "SETUSER", "noinfo", "on", ">pw-noinfo", "~expiry-bench:*", "&*", "+@all", "-info")
                let cleanup = try await runExpiryBench(["cleanup", "--redis", "redis://noinfo:pw-noinfo@127.0.0.1:\(server.port)", "--run-id", "kept27"], limit: .seconds(30))
                #expect(cleanup.status == 0, "\(describe(cleanup))")
                let lines = cleanup.stderr.split(separator: "\n")
                #expect(lines.contains { $0.hasPrefix("expiry-bench: warning: INFO is refused to this user") }, "\(describe(cleanup))")
                #expect(lines.allSatisfy { $0.hasPrefix("expiry-bench: ") }, "a line in another format: \(describe(cleanup))")
                #expect(try await control.send("DBSIZE") == .integer(5))
            }
        }

        /// Saturation is said only when the consumers held the generator back: one slow consumer at full speed is
        /// saturated; `--sweeper off` beside 50,000 TTL keys (Redis expires the keys late, the consumers idle) is
        /// not. That run ends at `--max-duration` before the probes' window: their figures are unknown, `null` in
        /// the JSON, and the window is not said to have been waited.
        @Test func saturationOnlyWhenTheConsumersHoldTheGeneratorAndTheProbeWindowOnlyWhenWaited() async throws {
            try await withRedis { server in
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                let json = temporaryPath("saturation.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                func report() throws -> [String: Any] {
                    try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
                }

                let slow = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "1000", "--consumers", "1", "--work", "5ms", "--batch", "10",
                                                     "--max-outstanding", "200", "--progress", "none", "--json", json], limit: .seconds(60))
                #expect(slow.status == 0, "\(describe(slow))")
                let saturated = try report()
                #expect(saturated["saturated"] as? Bool == true, "\(saturated)")
                #expect((saturated["generator_waits_on_consumers"] as? Int ?? 0) > 0)
                #expect(slow.stdout.contains("Saturated at ") && slow.stdout.contains("missing after 10s"), "\(describe(slow))")

                let idle = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "3000", "--consumers", "4", "--work", "1ms", "--sweeper", "off",
                                                     "--background-keys", "50000", "--max-outstanding", "500", "--max-duration", "6s",
                                                     "--progress", "none", "--json", json], limit: .seconds(60))
                #expect(idle.status == 1, "\(describe(idle))")
                let notSaturated = try report()
                #expect(notSaturated["saturated"] as? Bool == false, "\(notSaturated)")
                #expect((notSaturated["generator_waits"] as? Int ?? 0) > 0 && notSaturated["generator_waits_on_consumers"] as? Int == 0)
                #expect(!idle.stdout.contains("Saturated"), "\(describe(idle))")
                let lag = try #require(notSaturated["expiry_lag_ms"] as? [String: Any])
                #expect((lag["unresolved"] as? Int ?? 0) > 0 && lag["missing"] is NSNull && lag["p50"] is NSNull, "\(lag)")
                #expect(idle.stdout.contains("Redis's own expiry lag    unknown (the run ended before the probes' 10s window"), "\(describe(idle))")
                #expect(!idle.stdout.contains("missing after"))
                #expect(!idle.stdout.contains("  chaos ") && !idle.stdout.contains("  recovery "))
                #expect(try await control.send("DBSIZE") == .integer(0), "the runs left keys")
                #expect(try await notifyKeyspaceEvents(control) == "")
            }
        }
    }
}
