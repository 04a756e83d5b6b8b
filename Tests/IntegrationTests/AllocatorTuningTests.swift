import Foundation
import Testing

extension Scenarios {
    /// The built binary restarts itself with glibc's tcache off (memory stays flat on long runs), and leaves a
    /// user's own malloc tunables alone.
    @Suite(.serialized)
    struct AllocatorTuningTests {
        /// `GLIBC_TUNABLES` as the running process `pid` has it (nil when absent).
        static func tunables(of pid: Int32) -> String? {
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
            return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                .first { $0.hasPrefix("GLIBC_TUNABLES=") }.map { String($0.dropFirst("GLIBC_TUNABLES=".count)) }
        }

        /// Runs a few seconds of keys with `environment`, and returns the run's `GLIBC_TUNABLES` as seen from
        /// outside while it went.
        static func tunablesDuringARun(environment: [String: String]) async throws -> String? {
            try await withRedis { server in
                let seen = Shared<String?>(nil)
                let result = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "6000", "--rate", "2000", "--consumers", "4",
                                                       "--work", "0", "--progress", "none"], environment: environment) { process in
                    try? await Task.sleep(for: .milliseconds(1500))
                    seen.update { $0 = tunables(of: process.processIdentifier) }
                }
                #expect(result.status == 0, "\(describe(result))")
                return seen.value
            }
        }

        @Test func theRunGoesWithoutGlibcsThreadCaches() async throws {
            let seen = try await Self.tunablesDuringARun(environment: ["GLIBC_TUNABLES": ""])
            #expect(seen?.hasPrefix("glibc.malloc.tcache_count=0") == true, "GLIBC_TUNABLES: \(seen ?? "absent")")
        }

        @Test func aUsersOwnMallocTunableIsLeftAlone() async throws {
            let seen = try await Self.tunablesDuringARun(environment: ["GLIBC_TUNABLES": "glibc.malloc.arena_max=4"])
            #expect(seen == "glibc.malloc.arena_max=4")
        }
    }
}
