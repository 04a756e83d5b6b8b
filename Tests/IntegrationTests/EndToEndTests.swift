import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// The built `expiry-bench` binary, run as a user would: exit codes, stdout/stderr and the JSON report.
@Suite(.serialized)
struct EndToEndTests {
    /// The directory holding the built products (the test bundle, the `expiry-bench` executable), whatever the
    /// scratch path: found from the running test bundle, as swift-argument-parser's `productsDirectory` does.
    static func productsDirectory() throws -> URL {
        var candidates: [URL] = []
        #if os(macOS)
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            candidates.append(bundle.bundleURL.deletingLastPathComponent())
        }
        #endif
        candidates.append(Bundle.main.bundleURL)
        candidates.append(Bundle.main.executableURL?.deletingLastPathComponent() ?? Bundle.main.bundleURL)
        if let first = CommandLine.arguments.first {
            let url = URL(fileURLWithPath: first).resolvingSymlinksInPath()
            candidates.append(url.deletingLastPathComponent())
            // A path inside a `.xctest` bundle (macOS: Foo.xctest/Contents/MacOS/Foo): the directory holding the bundle.
            var walk = url
            while walk.pathComponents.count > 1 {
                if walk.pathExtension == "xctest" { candidates.append(walk.deletingLastPathComponent()) }
                walk.deleteLastPathComponent()
            }
        }
        for directory in candidates where FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("expiry-bench").path) {
            return directory
        }
        throw ProductsDirectoryNotFound(searched: candidates.map(\.path))
    }

    struct ProductsDirectoryNotFound: Error, CustomStringConvertible {
        let searched: [String]
        var description: String { "no expiry-bench executable next to the test bundle; searched \(searched)" }
    }

    func runTool(_ arguments: [String], limit: Duration = .seconds(90),
                 whileRunning: (@Sendable (Process) async -> Void)? = nil) async throws -> ProgramResult {
        let binary = try Self.productsDirectory().appendingPathComponent("expiry-bench")
        let result = try await runProgram(binary, arguments, limit: limit, whileRunning: whileRunning)
        #expect(result.exitedNormally, "expiry-bench ended by a signal; stderr: \(result.stderr)")
        for marker in ["Fatal error", "Stack dump", "Program crashed", "Backtrace", "SIGSEGV", "SIGILL"] {
            #expect(!result.combined.contains(marker), "'\(marker)' in the output of expiry-bench \(arguments.joined(separator: " ")): \(result.combined)")
        }
        return result
    }

    func temporaryJSONPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("expiry-bench-report-\(UUID().uuidString.prefix(8)).json").path
    }

    @Test func verifiedRunExitsZeroAndWritesTheJSONReport() async throws {
        try await withRedis { server in
            let control = try await connect(server, name: "itest-observer")
            defer { control.close() }
            try await control.send("SET", "user:key", "kept")
            let json = temporaryJSONPath()
            defer { try? FileManager.default.removeItem(atPath: json) }
            let result = try await runTool(["--keys", "3000", "--consumers", "8", "--redis", "redis://127.0.0.1:\(server.port)",
                                            "--json", json, "--progress", "none"])
            #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
            #expect(result.stdout.contains("exactly-once"))
            #expect(!result.stdout.contains("Progress:"), "--progress none printed progress lines")

            let data = try Data(contentsOf: URL(fileURLWithPath: json))
            let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(report["verdict"] as? String == "exactly-once")
            #expect(report["keys_generated"] as? Int == 3000)
            #expect(report["keys_processed"] as? Int == 3000)
            #expect(report["duplicate_commits"] as? Int == 0)
            #expect(report["lost"] as? Int == 0)
            #expect(report["dead_lettered"] as? Int == 0)
            for field in ["duration_sec", "throughput_keys_per_sec", "max_unexpired"] {
                #expect(report[field] is NSNumber, "missing or non-numeric \(field)")
            }
            #expect(((report["throughput_keys_per_sec"] as? NSNumber)?.doubleValue ?? 0) > 0)
            let consumers = try #require(report["consumers"] as? [[String: Any]])
            #expect(consumers.count == 8)
            var total = 0
            for consumer in consumers {
                #expect((consumer["name"] as? String)?.isEmpty == false)
                let processed = try #require(consumer["processed"] as? Int)
                total += processed
            }
            #expect(total == 3000)
            #expect(Set(consumers.compactMap { $0["name"] as? String }).count == 8)
            // Where the keys came from, Redis's own lag, the footprint, saturation.
            #expect((report["published_by_notification"] as? Int ?? 0) + (report["published_by_sweeper"] as? Int ?? -1) == 3000)
            let expiredBy = try #require(report["expired_by"] as? [String: Int])
            #expect((expiredBy["redis"] ?? 0) + (expiredBy["sweeper"] ?? 0) == 3000)
            let lag = try #require(report["expiry_lag_ms"] as? [String: Any])
            for field in ["p50", "p90", "p99", "max", "count", "missing"] { #expect(lag[field] is NSNumber, "expiry_lag_ms.\(field) missing") }
            #expect(report["saturated"] is Bool)
            let footprint = try #require(report["footprint"] as? [String: Int])
            #expect(footprint["own_ttl_keys_peak"] != nil && footprint["data_keys_peak"] != nil)
            let latency = try #require(report["latency_ms"] as? [String: Any])
            let percentiles = try ["p50", "p90", "p99", "p999", "max"].map { key in
                try #require((latency[key] as? NSNumber)?.doubleValue, "latency_ms.\(key) missing")
            }
            #expect(percentiles.allSatisfy { $0 >= 0 })
            #expect(percentiles == percentiles.sorted(), "percentiles out of order: \(percentiles)")
            // The server named as its binary names itself ("Valkey server v=9.1.2" is Valkey 9.1.2, not Redis 7.2.4).
            let named = try #require(report["server"] as? [String: String])
            let binary = try #require(EmbeddedRedis.serverPath())
            let version = try await runProgram(URL(fileURLWithPath: binary), ["--version"], limit: .seconds(10)).stdout
            #expect(version.hasPrefix("\(named["name"] ?? "?") server v=\(named["version"] ?? "?") "), "JSON server \(named); \(binary) says: \(version)")

            // The run left only the user's key behind, and the notification setting as it was (empty by default).
            #expect(try await control.send("DBSIZE") == .integer(1))
            #expect(try await control.send("GET", "user:key") == .bulk("kept"))
            #expect(try await notifyKeyspaceEvents(control) == "")
        }
    }

    /// `expiry-bench probe`: on an empty server the events come within a few hundred ms; beside 100,000 keys with a
    /// 1 h TTL they come seconds late or not at all. Either way exit 0, nothing left, the setting as it was.
    @Test func probeMeasuresRedisOwnExpiryLagAndLeavesNothing() async throws {
        try await withRedis { server in
            let control = try await connect(server, name: "itest-observer")
            defer { control.close() }
            try await control.send("SET", "user:key", "kept")
            let json = temporaryJSONPath()
            defer { try? FileManager.default.removeItem(atPath: json) }
            let url = "redis://127.0.0.1:\(server.port)"
            func probe() async throws -> [String: Any] {
                let result = try await runTool(["probe", "--redis", url, "--keys", "300", "--window", "3s", "--json", json])
                #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
                #expect(result.stdout.contains("Redis's own expiry lag"))
                #expect(try await control.send("DBSIZE") == .integer(1 + Int64(try await control.send("EXISTS", "bg:1").int ?? 0) * 100_000),
                        "the probe left keys behind")
                #expect(try await notifyKeyspaceEvents(control) == "")
                return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
            }
            let empty = try await probe()
            #expect(empty["count"] as? Int == 300)
            #expect(empty["missing"] as? Int == 0)
            let lag = try #require(empty["lag_ms"] as? [String: Double])
            #expect((lag["p50"] ?? -1) >= 0 && (lag["p50"] ?? 1e9) < 200, "lag on an empty server: \(lag)")
            let settings = try #require(empty["server"] as? [String: Any])
            #expect(settings["hz"] as? Int == 10)
            #expect(settings["keys_with_ttl"] as? Int == 0)

            _ = try await control.send("EVAL", "for i = 1, 100000 do redis.call('SET', 'bg:' .. i, 'x', 'EX', 3600) end return 1", "0")
            let busy = try await probe()
            let busyLag = try #require(busy["lag_ms"] as? [String: Double])
            #expect((busyLag["p50"] ?? 0) > 1000, "lag beside 100,000 TTL keys: \(busyLag), missing \(busy["missing"] ?? "?")")
            #expect((busy["count"] as? Int ?? 0) + (busy["missing"] as? Int ?? 0) == 300)
            #expect((busy["server"] as? [String: Any])?["keys_with_ttl"] as? Int == 100_000)
            #expect(try await control.send("GET", "user:key") == .bulk("kept"))
        }
    }

    @Test func spawnRunsOnAPrivateServerAndStopsIt() async throws {
        let json = temporaryJSONPath()
        defer { try? FileManager.default.removeItem(atPath: json) }
        let result = try await runTool(["--redis", "spawn", "--keys", "2000", "--consumers", "4", "--json", json, "--progress", "none"])
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        #expect(report["verdict"] as? String == "exactly-once")
        #expect(report["keys_processed"] as? Int == 2000)
        // The report names the private server; once the tool has exited, nothing listens there any more.
        let redis = try #require(report["redis"] as? String)
        let address = try #require(redis.split(separator: " ").last.map(String.init), "no address in \(redis)")
        #expect(redis.hasPrefix("private redis-server 127.0.0.1:"), "redis: \(redis)")
        let endpoint = try RedisEndpoint(url: "redis://" + address)
        let error = await #expect(throws: RedisError.self) {
            try await RedisConnection.connect(to: endpoint, name: "itest", timeout: .seconds(1)).close()
        }
        #expect(error?.code == .io)
    }

    /// SIGKILL leaves the tool no chance to stop its private server: the kernel kills the server with it
    /// (`setpriv --pdeathsig`). Killed after 6 s, past the time an idle thread of the pool may end, which would
    /// also fire the signal, early, were the server started from one.
    @Test func aSpawnedServerDiesWithTheToolOnSIGKILL() async throws {
        let serverPID = Shared<pid_t?>(nil)
        let aliveAtKill = Shared(false)
        let goneAfterKill = Shared(false)
        // runProgram, not runTool: a process ended by a signal is what this test makes.
        let binary = try Self.productsDirectory().appendingPathComponent("expiry-bench")
        let result = try await runProgram(binary, ["--redis", "spawn", "--keys", "500000", "--rate", "10000", "--consumers", "4", "--work", "1ms",
                                                   "--progress", "none", "--max-duration", "60s"], limit: .seconds(60)) { process in
            _ = await waitUntil(.seconds(20)) {
                serverPID.update { $0 = Self.child(of: process.processIdentifier, named: "redis-server") }
                return serverPID.value != nil
            }
            try? await Task.sleep(for: .seconds(6))
            aliveAtKill.update { $0 = serverPID.value.map(Self.isAlive) ?? false }
            kill(process.processIdentifier, SIGKILL)
            // Checked here, and a survivor killed: while it runs, Process may never see the tool's exit.
            guard let pid = serverPID.value else { return }
            let gone = await waitUntil(.seconds(5)) { !Self.isAlive(pid) }
            goneAfterKill.update { $0 = gone }
            if !gone { kill(pid, SIGKILL) }
        }
        #expect(!result.exitedNormally && result.status == SIGKILL, "\(result.status) \(result.stderr)")
        let pid = try #require(serverPID.value, "no private redis-server was seen")
        #expect(aliveAtKill.value, "the server ended before the tool was killed")
        #expect(goneAfterKill.value, "redis-server \(pid) still ran 5 s after the tool was killed")
    }

    /// The pid of a process whose parent is `parent` and whose name is `name` (from /proc), if any.
    static func child(of parent: pid_t, named name: String) -> pid_t? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { continue }
            // pid (comm) state ppid ...
            guard let close = stat.lastIndex(of: ")") else { continue }
            let comm = stat[stat.index(after: stat.firstIndex(of: "(")!)..<close]
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if comm == name, fields.count > 1, pid_t(fields[1]) == parent { return pid }
        }
        return nil
    }

    /// True while `pid` runs (a zombie waiting for its new parent to reap it has ended).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }

    @Test(arguments: [
        (["--keys", "-5"], "--keys"),
        (["--keys=-5"], "--keys"),
        (["--consumers", "0"], "--consumers"),
        (["--ttl", "banana"], "--ttl"),
        (["--chaos", "meteor"], "--chaos"),
        (["--chaos", "failover", "--role", "consumer", "--run-id", "x1"], "--chaos failover"),
    ])
    func badUsageExits64NamingTheFlag(arguments: [String], flag: String) async throws {
        // An address nothing listens on: a usage error must be reported before any connection is tried.
        let port = try EmbeddedRedis.freePort()
        let result = try await runTool(arguments + ["--redis", "redis://127.0.0.1:\(port)", "--progress", "none"])
        #expect(result.status == 64, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        #expect(result.stderr.contains(flag), "stderr does not name \(flag): \(result.stderr)")
    }

    /// `--chaos` alone still means the consumer faults; `--chaos failover` on a server named directly is refused
    /// before anything is written (nothing would follow the failover), exit 64.
    @Test func chaosAloneMeansConsumerFaultsAndAFailoverNeedsSentinelsOrACluster() async throws {
        try await withRedis { server in
            let json = temporaryPath("chaos-cli.json")
            defer { try? FileManager.default.removeItem(atPath: json) }
            let url = "redis://127.0.0.1:\(server.port)"
            let run = try await runTool(["--redis", url, "--keys", "3000", "--consumers", "8", "--work", "1ms", "--chaos", "--progress", "none", "--json", json],
                                        limit: .seconds(60))
            #expect(run.status == 0, "stdout: \(run.stdout)\nstderr: \(run.stderr)")
            let settings = try readJSONReport(json)["settings"] as? [String: Any] ?? [:]
            #expect(settings["chaos"] as? Bool == true && settings["chaos_failover"] as? Bool == false, "\(settings)")
            let refused = try await runTool(["--redis", url, "--keys", "3000", "--chaos", "consumers,failover", "--progress", "none"], limit: .seconds(30))
            #expect(refused.status == 64, "stdout: \(refused.stdout)\nstderr: \(refused.stderr)")
            #expect(refused.stderr.contains("--chaos failover asks the sentinels, or a cluster's replica, for a failover: 127.0.0.1:\(server.port) is a server named directly"),
                    "stderr: \(refused.stderr)")
            #expect(refused.stderr.split(separator: "\n").count == 1, "stderr: \(refused.stderr)")
            let connection = try await connect(server, name: "itest:after")
            defer { connection.close() }
            #expect(try await scanKeys(connection, match: "expiry-bench*").isEmpty)
            #expect(try await notifyKeyspaceEvents(connection) == "")
        }
    }

    @Test func unreachableServerExits69NamingTheAddress() async throws {
        let port = try EmbeddedRedis.freePort()
        let result = try await runTool(["--keys", "100", "--redis", "redis://127.0.0.1:\(port)", "--progress", "none"], limit: .seconds(30))
        #expect(result.status == 69, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        #expect(result.stderr.contains("127.0.0.1:\(port)"), "stderr: \(result.stderr)")
    }

    @Test func wrongPasswordExits77AndNeverShowsThePassword() async throws {
        try await withRedis(extraArguments: ["--requirepass", "secret"]) { server in
            let wrong = "Wr0ngPassw0rd-e2e"
            for url in ["redis://:\(wrong)@127.0.0.1:\(server.port)", "redis://default:\(wrong)@127.0.0.1:\(server.port)"] {
                let result = try await runTool(["--keys", "100", "--redis", url, "--progress", "none"], limit: .seconds(30))
                #expect(result.status == 77, "\(EndpointRedaction.redact(url)): stdout: \(result.stdout)\nstderr: \(result.stderr)")
                #expect(!result.combined.contains(wrong), "the password appears in the output")
                #expect(!result.combined.contains("secret"), "the server's password appears in the output")
                #expect(!result.stderr.isEmpty)
            }
            // No password at all against a server that requires one is an authentication failure too.
            let result = try await runTool(["--keys", "100", "--redis", "redis://127.0.0.1:\(server.port)", "--progress", "none"], limit: .seconds(30))
            #expect(result.status == 77, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        }
    }

    @Test func interruptStopsTheRunWithExit130() async throws {
        try await withRedis { server in
            let control = try await connect(server, name: "itest-observer")
            defer { control.close() }
            let result = try await runTool(["--keys", "50000", "--consumers", "4", "--work", "5ms", "--redis", "redis://127.0.0.1:\(server.port)",
                                            "--progress", "none"], limit: .seconds(60)) { process in
                // Interrupt once the consumers are connected (the run is under way), then half a second later.
                for _ in 0..<300 {
                    let clients = (try? await control.send("CLIENT", "LIST").string) ?? ""
                    if clients.contains(":consumer-0 ") { break }
                    try? await Task.sleep(for: .milliseconds(20))
                }
                try? await Task.sleep(for: .milliseconds(500))
                kill(process.processIdentifier, SIGINT)
            }
            #expect(result.status == 130, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
            #expect(result.stderr.contains("stopping"), "the first interrupt should be acknowledged: \(result.stderr)")
            // A graceful stop still cleans up after itself.
            #expect(try await control.send("DBSIZE") == .integer(0))
            #expect(try await notifyKeyspaceEvents(control) == "")
        }
    }
}

/// Redacts the password of a URL for test messages.
enum EndpointRedaction {
    static func redact(_ url: String) -> String { RedisEndpoint.redact(url) }
}
