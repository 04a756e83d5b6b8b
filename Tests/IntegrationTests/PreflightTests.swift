import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

extension Scenarios {
    /// The checks made before any key is written, through the built binary: credentials, the notification
    /// setting where CONFIG is disabled, memory, cluster mode, flag values, and a Unix socket. Each is judged by
    /// what a user sees: the exit code, and a line on stderr that names the cause.
    @Suite(.serialized)
    struct PreflightTests {
        /// A small, quick run against `url`.
        func smallRun(_ url: String, _ extra: [String] = []) -> [String] {
            ["--redis", url, "--keys", "2000", "--consumers", "4", "--work", "1ms", "--progress", "none",
             "--timeout", "5s", "--stall-timeout", "10s", "--max-duration", "30s"] + extra
        }

        // MARK: - Credentials

        /// A user made as the Redis docs recommend for applications (`+@all -@dangerous`, its own keys): with
        /// notifications on, the run goes ahead without INFO and CONFIG (a warning says what is skipped) and
        /// verifies; with them off, exit 78 and the line that says so; without `@scripting`, exit 77 and a line
        /// naming the refused command, never a word about the password.
        @Test func leastPrivilegeUserRunsAndRefusalsNameThePermission() async throws {
            try await withRedis { server in
                let admin = try await connect(server, name: "itest-admin")
                defer { admin.close() }
                try await admin.send("ACL", "SETUSER", "bench", "on", ">pw-bench", "~expiry-bench:*", "&*", "+@all", "-@dangerous")
                try await admin.send("ACL", "SETUSER", "noscript", "on", ">pw-noscript", "~expiry-bench:*", "&*", "+@all", "-@dangerous", "-@scripting")
                try await admin.send("CONFIG", "SET", "notify-keyspace-events", "Ex")
                let bench = "redis://bench:pw-bench@127.0.0.1:\(server.port)"

                let ran = try await runExpiryBench(smallRun(bench))
                #expect(ran.status == 0, "\(describe(ran))")
                #expect(ran.stdout.contains("Verdict: exactly-once"))
                #expect(ran.stderr.contains("INFO is refused to this user") && ran.stderr.contains("+info"), "\(describe(ran))")
                #expect(!ran.combined.contains("credentials"))

                try await admin.send("CONFIG", "SET", "notify-keyspace-events", "")
                let off = try await runExpiryBench(smallRun(bench), limit: .seconds(30))
                #expect(off.status == 78, "\(describe(off))")
                #expect(off.stderr.contains("expired-key events are off"), "\(describe(off))")
                try await admin.send("CONFIG", "SET", "notify-keyspace-events", "Ex")

                let noscript = try await runExpiryBench(smallRun("redis://noscript:pw-noscript@127.0.0.1:\(server.port)"), limit: .seconds(30))
                #expect(noscript.status == 77, "\(describe(noscript))")
                #expect(noscript.stderr.contains("script|load") && noscript.stderr.contains("+@scripting"), "\(describe(noscript))")
                #expect(!noscript.combined.lowercased().contains("password") && !noscript.combined.contains("credentials"), "\(describe(noscript))")
                #expect(try await admin.send("DBSIZE") == .integer(0), "nothing of the runs is left")
                #expect(try await notifyKeyspaceEvents(admin) == "xE")
            }
        }

        /// A user allowed everything the run needs but transactions: exit 77 and the permission to grant, with
        /// nothing written (the claim's MULTI goes alone first, so no write runs outside the refused transaction).
        @Test(arguments: [(["-multi", "-exec"], "multi"), (["-exec"], "exec")])
        func aUserWithoutMultiOrExecExits77NamingThemAndLeavesNothing(denied: [String], named: String) async throws {
            try await withRedis { server in
                let admin = try await connect(server, name: "itest-admin")
                defer { admin.close() }
                try await admin.send(RedisCommand(["ACL", "SETUSER", "notx", "on", ">pw-notx", "~*", "&*", "+@all"] + denied))
                try await admin.send("SET", "user:keep-me", "mine")
                let setting = try await notifyKeyspaceEvents(admin)
                let result = try await runExpiryBench(smallRun("redis://notx:pw-notx@127.0.0.1:\(server.port)", ["--run-id", "notx1"]), limit: .seconds(30))
                #expect(result.status == 77, "\(describe(result))")
                #expect(result.stderr.contains("grant the command '\(named)': ACL SETUSER notx +multi +exec"), "\(describe(result))")
                #expect(!result.stderr.contains("EXECABORT") && !result.combined.contains("pw-notx"), "\(describe(result))")
                #expect(try await scanKeys(admin, match: "expiry-bench:*") == [], "no meta key, nothing of the run")
                #expect(try await admin.send("DBSIZE") == .integer(1))
                #expect(try await notifyKeyspaceEvents(admin) == setting)
            }
        }

        @Test func passwordFromTheEnvironmentOrAFileAndNeverPrinted() async throws {
            let password = "Pr1v4te-S3cret-pw"
            let wrong = "Wr0ng-Pa55-guess"
            try await withRedis(extraArguments: ["--requirepass", password]) { server in
                let directory = try shortTemporaryDirectory("pw")
                defer { try? FileManager.default.removeItem(at: directory) }
                let rightFile = directory.appendingPathComponent("right").path
                let wrongFile = directory.appendingPathComponent("wrong").path
                try Data("\(password)\n".utf8).write(to: URL(fileURLWithPath: rightFile))
                try Data("\(wrong)\n".utf8).write(to: URL(fileURLWithPath: wrongFile))
                let url = tcpURL(server)

                // Wrong password, from REDIS_PASSWORD and from --password-file: 77, and neither password shown.
                let wrongFromEnvironment = try await runExpiryBench(smallRun(url), environment: ["REDIS_PASSWORD": wrong], limit: .seconds(30))
                let wrongFromFile = try await runExpiryBench(smallRun(url, ["--password-file", wrongFile]), limit: .seconds(30))
                for result in [wrongFromEnvironment, wrongFromFile] {
                    #expect(result.status == 77, "\(describe(result))")
                    #expect(!result.stderr.isEmpty, "no reason given on stderr")
                    #expect(!result.combined.contains(wrong), "the password given appears in the output: \(result.combined)")
                    #expect(!result.combined.contains(password), "the server's password appears in the output")
                }

                // The right one, from REDIS_PASSWORD and from --password-file: the run verifies, and the password
                // is still nowhere in the output (the report names the server without it).
                let json = temporaryPath("pw.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let rightFromEnvironment = try await runExpiryBench(smallRun(url, ["--json", json]), environment: ["REDIS_PASSWORD": password])
                #expect(rightFromEnvironment.status == 0, "\(describe(rightFromEnvironment))")
                #expect(rightFromEnvironment.stdout.contains("exactly-once"))
                let jsonText = (try? String(contentsOfFile: json, encoding: .utf8)) ?? ""
                #expect(try readJSONReport(json)["verdict"] as? String == "exactly-once", "JSON: \(jsonText)")
                #expect(!jsonText.contains(password), "the password appears in the JSON report")
                let rightFromFile = try await runExpiryBench(smallRun(url, ["--password-file", rightFile]))
                #expect(rightFromFile.status == 0, "\(describe(rightFromFile))")
                for result in [rightFromEnvironment, rightFromFile] {
                    #expect(!result.combined.contains(password), "the password appears in the output: \(result.combined)")
                }
            }
        }

        // MARK: - Notifications where CONFIG is disabled

        @Test func configDisabledWithNotificationsOffExits78NamingTheSetting() async throws {
            try await withRedis(extraArguments: ["--rename-command", "CONFIG", ""]) { server in
                let result = try await runExpiryBench(smallRun(tcpURL(server)), limit: .seconds(30))
                #expect(result.status == 78, "\(describe(result))")
                #expect(result.stderr.contains("notify-keyspace-events"), "stderr: \(result.stderr)")
                // Refused before the run: none of its keys were written (the probe key expired and is gone).
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                #expect(try await scanKeys(control, match: "expiry-bench:*") == [])
            }
        }

        @Test func configDisabledWithNotificationsOnRunsAfterAProbe() async throws {
            try await withRedis(extraArguments: ["--rename-command", "CONFIG", "", "--notify-keyspace-events", "Ex"]) { server in
                let result = try await runExpiryBench(smallRun(tcpURL(server)))
                #expect(result.status == 0, "\(describe(result))")
                #expect(result.stdout.contains("CONFIG is not available"), "stdout: \(result.stdout)")
                #expect(result.stdout.contains("exactly-once"))
            }
        }

        // MARK: - Memory

        @Test func maxmemoryTooSmallExits78UnlessForced() async throws {
            try await withRedis(extraArguments: ["--maxmemory", "2mb"]) { server in
                let refused = try await runExpiryBench(smallRun(tcpURL(server)), limit: .seconds(30))
                #expect(refused.status == 78, "\(describe(refused))")
                #expect(refused.stderr.contains("maxmemory"), "stderr: \(refused.stderr)")
                #expect(refused.stderr.contains("--force"), "the way out is not named: \(refused.stderr)")
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                #expect(try await control.send("DBSIZE") == .integer(0), "keys were written before the refusal")

                let forced = try await runExpiryBench(smallRun(tcpURL(server), ["--force"]))
                #expect(forced.status == 0 || forced.status == 1, "\(describe(forced))")
                #expect(forced.stderr.contains("--force"), "the going-on warning is missing: \(forced.stderr)")
                #expect(forced.stdout.contains("Verdict:"), "no report: \(describe(forced))")

            }
        }

        /// With --force on a server already past its maxmemory, Redis answers the run's first write with OOM. Redis
        /// is reachable and said why: that is not exit 69 ("Redis unreachable", README), but a run the server's
        /// configuration makes impossible (78) or a failed run (1), with the reason on stderr.
        @Test func forcedRunOnAServerOutOfMemoryIsNotReportedAsUnreachable() async throws {
            try await withRedis(extraArguments: ["--maxmemory", "1"]) { server in
                let result = try await runExpiryBench(smallRun(tcpURL(server), ["--force"]), limit: .seconds(30))
                #expect(result.status != 69, "exit 69 says Redis is unreachable, but it answered OOM: \(describe(result))")
                #expect(result.status == 78 || result.status == 1, "\(describe(result))")
                #expect(result.combined.contains("OOM") || result.combined.contains("maxmemory"), "\(describe(result))")
                // Whatever the exit, the run put everything back.
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                #expect(try await control.send("DBSIZE") == .integer(0))
                #expect(try await notifyKeyspaceEvents(control) == "")
            }
        }

        @Test func evictionPolicyOtherThanNoevictionIsAWarningNamingIt() async throws {
            try await withRedis(extraArguments: ["--maxmemory-policy", "allkeys-lru"]) { server in
                let result = try await runExpiryBench(smallRun(tcpURL(server)))
                #expect(result.status == 0, "\(describe(result))")
                #expect(result.stderr.contains("warning"), "stderr: \(result.stderr)")
                #expect(result.stderr.contains("allkeys-lru"), "stderr: \(result.stderr)")
                #expect(!result.stdout.contains("allkeys-lru"), "the warning belongs on stderr")
            }
        }

        // MARK: - Cluster

        /// A cluster node that serves no slots yet (never joined to a cluster): the run cannot place its keys.
        @Test func unreadyClusterNodeExits78NamingTheCluster() async throws {
            let directory = try shortTemporaryDirectory("cluster")
            defer { try? FileManager.default.removeItem(at: directory) }
            let nodes = directory.appendingPathComponent("nodes.conf").path
            try await withRedis(extraArguments: ["--cluster-enabled", "yes", "--cluster-config-file", nodes]) { server in
                let result = try await runExpiryBench(smallRun(tcpURL(server)), limit: .seconds(30))
                #expect(result.status == 78, "\(describe(result))")
                #expect(result.stderr.contains("Cluster"), "stderr: \(result.stderr)")
                #expect(result.stderr.contains("cluster_state"), "stderr: \(result.stderr)")
                #expect(result.stderr.contains("127.0.0.1:\(server.port)"), "stderr: \(result.stderr)")
            }
        }

        // MARK: - Flag values

        @Test(arguments: [
            (["--fail-rate", "1.5"], "--fail-rate"),
            (["--max-deliveries", "0"], "--max-deliveries"),
            (["--grace", "banana"], "--grace"),
            (["--batch", "0"], "--batch"),
            (["--batch", "300", "--work", "5ms"], "--lock-ttl"),
            (["--namespace", "a b"], "--namespace"),
        ])
        func badFlagValueExits64NamingTheFlag(arguments: [String], flag: String) async throws {
            // An address nothing listens on: the value must be refused before any connection is tried.
            let port = try EmbeddedRedis.freePort()
            let result = try await runExpiryBench(arguments + ["--redis", "redis://127.0.0.1:\(port)", "--keys", "100", "--progress", "none"],
                                                  limit: .seconds(20))
            #expect(result.status == 64, "\(describe(result))")
            #expect(result.stderr.contains(flag), "stderr does not name \(flag): \(result.stderr)")
            #expect(!result.stderr.contains("127.0.0.1:\(port)"), "a connection was tried: \(result.stderr)")
            if arguments.contains("300") {
                // The lock constraint names both sides: the batch and the lock TTL.
                #expect(result.stderr.contains("--batch 300"), "stderr: \(result.stderr)")
            }
        }

        // MARK: - Unix socket

        @Test func unixSocketRunVerifies() async throws {
            let directory = try shortTemporaryDirectory("sock")
            defer { try? FileManager.default.removeItem(at: directory) }
            let socket = directory.appendingPathComponent("r.sock").path
            try await withRedis(extraArguments: ["--unixsocket", socket, "--unixsocketperm", "700"]) { server in
                #expect(FileManager.default.fileExists(atPath: socket), "redis-server did not create \(socket)")
                let json = temporaryPath("unix.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let result = try await runExpiryBench(smallRun("unix://\(socket)", ["--json", json]))
                #expect(result.status == 0, "\(describe(result))")
                #expect(result.stdout.contains("exactly-once"))
                let report = try readJSONReport(json)
                #expect(report["keys_processed"] as? Int == 2000)
                #expect((report["redis"] as? String)?.contains(socket) == true, "redis: \(report["redis"] ?? "nil")")
                let control = try await connect(server, name: "itest-observer")
                defer { control.close() }
                #expect(try await control.send("DBSIZE") == .integer(0))
            }
        }
    }
}
