import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// A Redis 6.0 server for the refusal test: `EXPIRY_BENCH_REDIS_SERVER` when it names one (as
/// `scripts/server-checks redis-6.0.9` sets it), else the one `scripts/servers fetch redis-6.0.9` unpacked; nil
/// when neither is there (the test is then skipped).
let redis60Server: String? = {
    let environment = ProcessInfo.processInfo.environment
    if let chosen = environment[EmbeddedRedis.serverVariable], chosen.contains("redis-6.0"), FileManager.default.isExecutableFile(atPath: chosen) {
        return chosen
    }
    let cache = environment["EXPIRY_BENCH_SERVERS"] ?? (NSHomeDirectory() + "/.cache/expiry-bench/servers")
    let fetched = cache + "/redis-6.0.9/redis_server/bin/redis-server"
    return FileManager.default.isExecutableFile(atPath: fetched) ? fetched : nil
}()

extension Scenarios {
    /// `expiry-bench probe` refuses what a run refuses, and never reports a lag for probes it could not write
    /// (issue 27, case 7): each case is judged by the exit code, the line on stderr, and what Redis holds after.
    @Suite(.serialized)
    struct ProbeRefusalTests {
        func probe(_ url: String, _ extra: [String] = []) -> [String] {
            ["probe", "--redis", url, "--keys", "200", "--window", "1s", "--timeout", "5s"] + extra
        }

        /// Nothing of the probe is left and the setting is as it was.
        func expectUntouched(_ server: EmbeddedRedis, keys: Int = 0, setting: String = "", _ comment: Comment) async throws {
            let connection = try await connect(server, name: "itest-observer")
            defer { connection.close() }
            #expect(try await connection.send("DBSIZE") == .integer(Int64(keys)), comment)
            #expect(try await notifyKeyspaceEvents(connection) == setting, comment)
        }

        /// A replica: exit 78 and the run's own line, naming the primary; the replica's setting is not touched and
        /// neither server holds a probe key.
        @Test func aReplicaIsRefusedAsARunRefusesIt() async throws {
            try await withRedis { primary in
                let replica = try await EmbeddedRedis.start(extraArguments: ["--replicaof", "127.0.0.1", String(primary.port)])
                do {
                    let probed = try await runExpiryBench(probe(tcpURL(replica)), limit: .seconds(30))
                    let ran = try await runExpiryBench(["--redis", tcpURL(replica), "--keys", "1000", "--progress", "none"], limit: .seconds(30))
                    #expect(probed.status == 78, "\(describe(probed))")
                    #expect(probed.stderr.contains("127.0.0.1:\(replica.port) is a replica of 127.0.0.1:\(primary.port)")
                            && probed.stderr.contains("Point --redis at the primary, 127.0.0.1:\(primary.port)."), "\(describe(probed))")
                    #expect(ran.status == probed.status)
                    #expect(probed.stderr.replacingOccurrences(of: "the probe writes", with: "the run writes") == ran.stderr, "probe: \(probed.stderr)\nrun: \(ran.stderr)")
                    #expect(!probed.stdout.contains("missing") && !probed.stdout.contains("expiry lag"), "\(describe(probed))")
                    try await expectUntouched(replica, "the replica")
                    try await expectUntouched(primary, "the primary")
                } catch {
                    await stopOffThePool(replica)
                    throw error
                }
                await stopOffThePool(replica)
            }
        }

        /// Writes refused (NOREPLICAS under min-replicas-to-write, OOM under maxmemory): exit 78, the cause as Redis
        /// gave it, no lag and no JSON report; nothing left and the setting put back.
        @Test(arguments: [
            (["--min-replicas-to-write", "1"], "NOREPLICAS", "lower min-replicas-to-write"),
            (["--maxmemory", "1"], "OOM", "raise maxmemory"),
        ])
        func refusedWritesEndTheProbeWithTheirCause(settings: [String], cause: String, advice: String) async throws {
            try await withRedis(extraArguments: settings) { server in
                let json = temporaryPath("refused-probe.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let result = try await runExpiryBench(probe(tcpURL(server), ["--json", json]), limit: .seconds(30))
                #expect(result.status == 78, "\(describe(result))")
                #expect(result.stderr.contains("expiry-bench: error: Redis at 127.0.0.1:\(server.port) refused the probe's writes (\(cause)")
                        && result.stderr.contains(advice), "\(describe(result))")
                #expect(!result.stdout.contains("missing") && !result.stdout.contains("Redis's own expiry lag"), "\(describe(result))")
                #expect(!FileManager.default.fileExists(atPath: json), "a JSON report for a probe that measured nothing")
                try await expectUntouched(server, "\(cause)")
            }
        }

        /// Redis 6.0 (no SET ... PXAT): exit 78 as a run, by the same check; nothing written, nothing changed.
        @Test(.enabled(if: redis60Server != nil, "Redis 6.0.9 is not here: scripts/servers fetch redis-6.0.9"))
        func redis60IsRefusedAsARunRefusesIt() async throws {
            let server = try await EmbeddedRedis.start(binary: try #require(redis60Server))
            do {
                let probed = try await runExpiryBench(probe(tcpURL(server)), limit: .seconds(30))
                let ran = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "1000", "--progress", "none"], limit: .seconds(30))
                #expect(probed.status == 78 && ran.status == 78, "probe: \(describe(probed))\nrun: \(describe(ran))")
                #expect(probed.stderr.contains("Redis 6.0.9 at 127.0.0.1:\(server.port) is too old: the probe needs SET ... PXAT, which came with Redis 6.2"), "\(describe(probed))")
                #expect(ran.stderr.contains("Redis 6.0.9 at 127.0.0.1:\(server.port) is too old: the run needs XAUTOCLAIM"), "\(describe(ran))")
                #expect(!probed.stdout.contains("missing"), "\(describe(probed))")
                try await expectUntouched(server, "Redis 6.0.9")
            } catch {
                await stopOffThePool(server)
                throw error
            }
            await stopOffThePool(server)
        }

        /// CONFIG renamed away, events on: the probe measures, and the settings it could not read are `null` in the
        /// JSON, with the reason, and "unknown (why)" in the text; INFO still gives the keys with a TTL. The
        /// warning of a user without INFO is one line in the tool's format, not the logger's.
        @Test func settingsNotToldAreNullAndSaidUnknown() async throws {
            try await withRedis(extraArguments: ["--rename-command", "CONFIG", "", "--notify-keyspace-events", "Ex"]) { server in
                let json = temporaryPath("probe-null.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let result = try await runExpiryBench(probe(tcpURL(server), ["--json", json]), limit: .seconds(30))
                #expect(result.status == 0, "\(describe(result))")
                #expect(result.stdout.contains("hz unknown (CONFIG GET hz refused: ERR unknown command 'CONFIG'"), "\(describe(result))")
                #expect(result.stdout.contains("active-expire-effort unknown (CONFIG GET active-expire-effort refused:"), "\(describe(result))")
                let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
                let settings = try #require(report["server"] as? [String: Any])
                #expect(settings["hz"] is NSNull && settings["active_expire_effort"] is NSNull, "\(settings)")
                #expect(settings["keys_with_ttl"] as? Int == 0)
                #expect((settings["unknown"] as? [String: String])?["hz"]?.contains("unknown command") == true, "\(settings)")
                #expect(report["count"] as? Int == 200 && report["missing"] as? Int == 0)
                let connection = try await connect(server, name: "itest-observer")
                defer { connection.close() }
                #expect(try await connection.send("DBSIZE") == .integer(0))
            }
            try await withRedis { server in
                let admin = try await connect(server, name: "itest-admin")
                defer { admin.close() }
                try await admin.send("ACL", "SETUSER", "noinfo", "on", ">pw-noinfo", "~expiry-bench:*", "&*", "+@all", "-info", "-config")
                try await admin.send("CONFIG", "SET", "notify-keyspace-events", "Ex")
                let result = try await runExpiryBench(probe("redis://noinfo:pw-noinfo@127.0.0.1:\(server.port)"), limit: .seconds(30))
                #expect(result.status == 0, "\(describe(result))")
                let warnings = result.stderr.split(separator: "\n").filter { $0.contains("INFO is refused") }
                #expect(warnings.count == 1 && warnings.allSatisfy { $0.hasPrefix("expiry-bench: warning: INFO is refused to this user") }, "\(describe(result))")
                #expect(result.stdout.contains("keys with a TTL unknown (INFO keyspace refused: NOPERM"), "\(describe(result))")
                #expect(try await admin.send("DBSIZE") == .integer(0))
                #expect(try await notifyKeyspaceEvents(admin) == "xE")
            }
        }
    }
}
