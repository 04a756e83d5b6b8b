import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

extension Scenarios {
    /// A server whose memory fills under the run, with a policy that evicts (issue 27, case 6): the report counts
    /// what Redis evicted during the run, as INFO stats says, names the policy, and blames eviction, not a
    /// restart, when the run's data goes missing; the warning before says which of the run's keys can go.
    @Suite(.serialized)
    struct EvictionTests {
        static let namespace = "itest-evict"

        /// The server's `evicted_keys` (INFO stats).
        func evictedKeys(_ connection: RedisConnection) async throws -> Int {
            let info = try #require(try await connection.send("INFO", "stats").string)
            return try #require(ServerFacts.field("evicted_keys", in: info).flatMap { Int($0) })
        }

        @Test(arguments: ["volatile-lru", "volatile-ttl", "allkeys-lru", "allkeys-random"])
        func evictionsDuringTheRunAreCountedAndNamedAsTheCause(policy: String) async throws {
            try await withRedis { server in
                let admin = try await connect(server, name: "itest-admin")
                defer { admin.close() }
                // The user's keys, with a TTL (so that a volatile-* policy may take them too).
                let value = String(repeating: "u", count: 100)
                for first in stride(from: 0, to: 3000, by: 500) {
                    _ = try await admin.pipeline((first..<first + 500).map { RedisCommand("SET", "user:\($0)", value, "EX", "3600") })
                }
                let info = try #require(try await admin.send("INFO", "memory").string)
                let used = try #require(ServerFacts.field("used_memory", in: info).flatMap { Int($0) })
                try await admin.send("CONFIG", "SET", "maxmemory", String(used + 600_000))
                try await admin.send("CONFIG", "SET", "maxmemory-policy", policy)
                let before = try await evictedKeys(admin)

                let runID = "evict-\(policy)"
                let json = temporaryPath("evict.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let result = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "20000", "--rate", "10000", "--consumers", "8",
                                                       "--work", "1ms", "--timeout", "3s", "--stall-timeout", "10s", "--max-duration", "40s",
                                                       "--namespace", Self.namespace, "--run-id", runID, "--progress", "none", "--force", "--json", json])
                let after = try await evictedKeys(admin)
                #expect(result.status == 0 || result.status == 1, "\(describe(result))")
                #expect(result.stderr.contains("maxmemory-policy is \(policy)"), "\(describe(result))")
                #expect(result.stderr.contains(policy.hasPrefix("allkeys") ? "the user's keys included" : "every key of the run carries a TTL but its locks"),
                        "\(describe(result))")
                #expect(!result.stderr.contains("the stream and indexes do not"), "\(describe(result))")

                let report = try readJSONReport(json)
                #expect(after > before, "the test's server should have evicted keys: \(describe(result))")
                #expect(report["evicted_keys_during_run"] as? Int == after - before, "report \(report["evicted_keys_during_run"] ?? "absent"), INFO stats \(after - before)")
                #expect(report["maxmemory_policy"] as? String == policy)
                #expect(result.stdout.contains("evicted keys              \(Format.count(after - before)) during the run under maxmemory-policy \(policy)"),
                        "\(describe(result))")
                let problems = report["problems"] as? [String] ?? []
                if problems.contains(where: { $0.contains("the server lost the run's data") || $0.contains("are lost") }) {
                    #expect(problems.contains { $0.contains("Redis evicted \(Format.count(after - before)) keys during the run") }, "\(problems)")
                    #expect(!problems.contains { $0.contains("restarted without persistence") }, "\(problems)")
                }
                // Nothing of the run is left, and the server is as found.
                #expect(try await scanKeys(admin, match: "\(Self.namespace):\(runID):*") == [])
                #expect(try await notifyKeyspaceEvents(admin) == "")
                #expect(try await admin.send("CONFIG", "GET", "maxmemory-policy").fieldMap["maxmemory-policy"] == policy)
            }
        }

        /// No eviction: the JSON says 0 and the policy, and the text has no eviction line.
        @Test func noEvictionIsZeroAndNoLine() async throws {
            try await withRedis { server in
                let json = temporaryPath("noevict.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let result = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "2000", "--consumers", "4", "--work", "1ms",
                                                       "--namespace", Self.namespace, "--progress", "none", "--json", json])
                #expect(result.status == 0, "\(describe(result))")
                let report = try readJSONReport(json)
                #expect(report["evicted_keys_during_run"] as? Int == 0)
                #expect(report["maxmemory_policy"] as? String == "noeviction")
                #expect(!result.stdout.contains("evicted keys"))
            }
        }
    }
}
