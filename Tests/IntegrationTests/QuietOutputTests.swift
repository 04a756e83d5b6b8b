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
