import Foundation
import ExpiryPipeline
import Testing

extension Scenarios {
    /// The built binary restarts itself with glibc's tcache off (memory stays flat on long runs), and leaves a
    /// user's own malloc tunables alone.
    @Suite(.serialized)
    struct AllocatorTuningTests {
        /// The environment the running process `pid` was started with.
        static func environment(of pid: Int32) -> [String: String] {
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [:] }
            var result: [String: String] = [:]
            for entry in data.split(separator: 0) {
                let text = String(decoding: entry, as: UTF8.self)
                guard let equals = text.firstIndex(of: "=") else { continue }
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            return result
        }

        /// The processes `pid` started, from any of its threads.
        static func children(of pid: Int32) -> [Int32] {
            let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            return threads.flatMap { thread in
                ((try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/children", encoding: .utf8)) ?? "").split(separator: " ").compactMap { Int32($0) }
            }
        }

        /// Runs a few seconds of keys with `arguments` and `environment`; returns, as seen from outside while it
        /// went, the run's environment and its children's.
        static func environmentsDuringARun(_ arguments: [String], environment: [String: String]) async throws -> (run: [String: String], children: [[String: String]]) {
            let seen = Shared<(run: [String: String], children: [[String: String]])>(([:], []))
            let result = try await runExpiryBench(arguments + ["--keys", "6000", "--rate", "2000", "--consumers", "4", "--work", "0", "--progress", "none"],
                                                  environment: environment) { process in
                try? await Task.sleep(for: .milliseconds(1500))
                let pid = process.processIdentifier
                seen.update { $0 = (Self.environment(of: pid), Self.children(of: pid).map { Self.environment(of: $0) }) }
            }
            #expect(result.status == 0, "\(describe(result))")
            return seen.value
        }

        @Test func theRunGoesWithoutGlibcsThreadCachesAndItsServerInheritsNothing() async throws {
            // --redis spawn: the run starts its own redis-server, which must not inherit the setting.
            let seen = try await Self.environmentsDuringARun(["--redis", "spawn"], environment: ["GLIBC_TUNABLES": ""])
            #expect(seen.run["GLIBC_TUNABLES"] == "glibc.malloc.tcache_count=0", "run: \(seen.run["GLIBC_TUNABLES"] ?? "absent")")
            let servers = seen.children.filter { !$0.isEmpty }
            #expect(!servers.isEmpty, "no child process seen")
            for server in servers {
                #expect(server["GLIBC_TUNABLES"] == "", "a child inherited: \(server["GLIBC_TUNABLES"] ?? "absent")")
                #expect(server[AllocatorTuningMarker.name] == nil)
            }
        }

        @Test func aUsersOwnMallocTunableOrTheOptOutIsLeftAlone() async throws {
            try await withRedis { server in
                let own = try await Self.environmentsDuringARun(["--redis", tcpURL(server)], environment: ["GLIBC_TUNABLES": "glibc.malloc.arena_max=4"])
                #expect(own.run["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=4")
                let optedOut = try await Self.environmentsDuringARun(["--redis", tcpURL(server)], environment: ["GLIBC_TUNABLES": "", "EXPIRY_BENCH_MALLOC": "default"])
                #expect(optedOut.run["GLIBC_TUNABLES"] == "")
            }
        }
    }
}

/// The variable the command sets across its own restart (AllocatorTuning, in the executable).
enum AllocatorTuningMarker {
    static let name = "EXPIRY_BENCH_RESTARTED_TUNABLES"
}
