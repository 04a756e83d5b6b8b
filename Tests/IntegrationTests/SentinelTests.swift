import Foundation
import Synchronization
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// A primary, a replica and three sentinels watching them as `mymaster`, each a process on a free loopback port
/// (the sentinels from the same binary: `redis-server FILE --sentinel`), stopped afterwards.
struct LocalSentinels: Sendable {
    let primary: EmbeddedRedis
    let replica: EmbeddedRedis
    let sentinelPorts: [Int]
    static let master = "mymaster"

    var url: String { "redis-sentinel://" + sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "#\(Self.master)" }
    var servers: [EmbeddedRedis] { [primary, replica] }
}

func withSentinels<T: Sendable>(_ body: (LocalSentinels) async throws -> T) async throws -> T {
    // No delay before a replica's first copy (5 s by default): after a failover the old primary resynchronises at once.
    let primary = try await EmbeddedRedis.start(extraArguments: ["--repl-diskless-sync-delay", "0"])
    var started: [EmbeddedRedis] = [primary]
    var sentinels: [ChildProcess] = []
    let directory = temporaryPath("sentinels-\(UUID().uuidString.prefix(8))")
    let result: Result<T, Error>
    do {
        let replica = try await EmbeddedRedis.start(extraArguments: ["--replicaof", "127.0.0.1", String(primary.port), "--repl-diskless-sync-delay", "0"])
        started.append(replica)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var ports: [Int] = []
        for index in 0..<3 {
            let port = try EmbeddedRedis.freePort()
            let file = "\(directory)/sentinel-\(index).conf"
            try """
            port \(port)
            bind 127.0.0.1
            dir \(directory)
            logfile \(directory)/sentinel-\(index).log
            sentinel monitor \(LocalSentinels.master) 127.0.0.1 \(primary.port) 2
            sentinel down-after-milliseconds \(LocalSentinels.master) 1000
            sentinel failover-timeout \(LocalSentinels.master) 5000

            """.write(toFile: file, atomically: true, encoding: .utf8)
            sentinels.append(try EmbeddedRedis.launch(try #require(EmbeddedRedis.serverPath()), [file, "--sentinel"]))
            ports.append(port)
        }
        let group = LocalSentinels(primary: primary, replica: replica, sentinelPorts: ports)
        try await waitUntilSentinelsAreReady(group)
        result = .success(try await body(group))
    } catch {
        result = .failure(error)
    }
    for sentinel in sentinels {
        sentinel.send(SIGTERM)
        _ = await sentinel.waitForExit(within: .seconds(5))
    }
    for server in started { await stopOffThePool(server) }
    try? FileManager.default.removeItem(atPath: directory)
    return try result.get()
}

/// Waits (at most 30 s) until the replica is in sync and every sentinel knows the replica and the two other
/// sentinels: only then can they agree on a failover.
private func waitUntilSentinelsAreReady(_ group: LocalSentinels) async throws {
    let primary = try await connect(group.primary, name: "itest:sentinel-wait")
    defer { primary.close() }
    var state = ""
    for _ in 0..<300 {
        let info = try await primary.send("INFO", "replication").string ?? ""
        var ready = ServerFacts.replicasInSync(in: info) == 1
        for port in group.sentinelPorts where ready {
            // A sentinel just started may not listen yet.
            guard let sentinel = try? await RedisConnection.connect(to: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port)), name: "itest:sentinel-wait") else {
                state = "sentinel \(port) does not answer yet"
                ready = false
                break
            }
            defer { sentinel.close() }
            let replicas = try await sentinel.send("SENTINEL", "REPLICAS", LocalSentinels.master).array?.count ?? 0
            let others = try await sentinel.send("SENTINEL", "SENTINELS", LocalSentinels.master).array?.count ?? 0
            state = "sentinel \(port): \(replicas) replicas, \(others) other sentinels"
            ready = replicas == 1 && others == 2
        }
        if ready { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw RedisError(.timeout, "the sentinels were not ready after 30 s: \(state)")
}

extension Scenarios {
    /// Runs through `redis-sentinel://` URLs against a primary, a replica and three sentinels started by the test.
    @Suite(.serialized)
    struct SentinelTests {
        @Test func aRunThroughTheSentinelsFindsThePrimaryAndRunsExactlyOnce() async throws {
            try await withSentinels { group in
                let result = try await runExpiryBench(["--redis", group.url, "--keys", "5000", "--consumers", "8", "--work", "1ms", "--progress", "none",
                                                       "--stall-timeout", "20s", "--max-duration", "60s"], limit: .seconds(90))
                #expect(result.status == 0, "\(describe(result))")
                #expect(result.stdout.contains("Verdict: exactly-once"), "\(describe(result))")
                #expect(result.stdout.contains("on \(group.url)"), "\(describe(result))")
                #expect(result.stderr.contains("the primary '\(LocalSentinels.master)' has 1 replica"), "\(describe(result))")
                // The verdict says what it checked: the primary, not its replica.
                #expect(result.stdout.contains("(Checked on the primary. Replication is asynchronous: its replica may lack the last writes"), "\(describe(result))")
                let connection = try await connect(group.primary, name: "itest:after")
                defer { connection.close() }
                #expect(try await scanKeys(connection, match: "expiry-bench*").isEmpty)
                #expect(try await notifyKeyspaceEvents(connection) == "")
                let unknown = try await runExpiryBench(["--redis", group.url.replacingOccurrences(of: "#mymaster", with: "#nosuch"), "--keys", "100",
                                                        "--progress", "none"])
                #expect(unknown.status == 78, "\(describe(unknown))")
                #expect(unknown.stderr.contains("knows no primary named 'nosuch'"), "\(describe(unknown))")
            }
        }

        /// A failover mid-run. With `--wait-replicas 1` the tool asks for it itself (`--chaos failover`, when 20 to
        /// 50 % of the keys are generated), and nothing is lost: exactly-once (the writes may wait up to about 10 s,
        /// until the sentinels make the old primary a replica of the new one: the only replica there is), with the
        /// defaults. Without it, `SENTINEL FAILOVER` comes from outside two seconds after the first
        /// commit; writes the old primary took after the switch may be lost, and the verdict must then say so.
        /// Either way the run follows the new primary (the subscriber moves there), the report shows the failover
        /// (from the primary to the replica, and what it lost), the run leaves nothing on the new primary, and puts
        /// `notify-keyspace-events` back on both servers.
        @Test(.serialized, arguments: [true, false])
        func aFailoverMidRunIsFollowed(waitReplicas: Bool) async throws {
            try await withSentinels { group in
                let json = temporaryPath("sentinel.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let failover = Mutex<String?>(nil)
                let result = try await runExpiryBench(["--redis", group.url, "--keys", "60000", "--rate", "10000", "--consumers", "16", "--work", "1ms",
                                                       "--progress", "none", "--json", json, "--max-duration", "90s"]
                                                      + (waitReplicas ? ["--wait-replicas", "1", "--chaos", "failover"] : []), limit: .seconds(120)) { _ in
                    if waitReplicas { return }
                    do {
                        _ = await waitUntil(.seconds(60)) { (try? await hasKeys(group.primary, match: "expiry-bench:*:processed")) == true }
                        try await Task.sleep(for: .seconds(2))
                        let sentinel = try await RedisConnection.connect(to: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: group.sentinelPorts[0])),
                                                                         name: "itest:failover")
                        defer { sentinel.close() }
                        let reply = try await sentinel.send("SENTINEL", "FAILOVER", LocalSentinels.master).string ?? "no reply"
                        failover.withLock { $0 = reply }
                    } catch {
                        failover.withLock { $0 = "\(error)" }
                    }
                }
                let report = try readJSONReport(json)
                if waitReplicas {
                    let chaos = report["chaos"] as? [String: Any] ?? [:]
                    failover.withLock { $0 = chaos["failover_answer"] as? String }
                    #expect(result.stdout.contains("chaos failover            asked of 127.0.0.1:"), "\(describe(result))")
                }
                #expect(failover.withLock { $0 } == "OK", "SENTINEL FAILOVER: \(failover.withLock { $0 } ?? "not sent")")
                #expect(try await role(of: group.replica) == "master", "the replica was not promoted")
                let lost = report["lost"] as? Int ?? -1
                // The report shows the failover: from the primary to the replica, and what it lost.
                let failovers = report["failovers"] as? [[String: Any]] ?? []
                #expect(failovers.count == 1, "\(describe(result))")
                if let shown = failovers.first {
                    #expect(shown["via"] as? String == "sentinel")
                    #expect(shown["from"] as? String == "127.0.0.1:\(group.primary.port)" && shown["to"] as? String == "127.0.0.1:\(group.replica.port)", "\(shown)")
                    #expect(shown["lost"] as? Int == lost, "\(shown)")
                    let (first, all) = (shown["first_write_back_ms"] as? Int ?? -1, shown["writes_unavailable_ms"] as? Int ?? -1)
                    #expect(0 <= first && first <= all && all < 60_000, "\(shown)")
                    // With one replica, the writes wait until the old primary has become the new one's replica.
                    if waitReplicas { #expect(all >= 1_000 && (shown["connections_interrupted"] as? Int ?? 0) > 0, "\(shown)") }
                    #expect(result.stdout.contains("failovers                 1 (sentinel)"), "\(describe(result))")
                }
                #expect((report["subscriber_reconnects"] as? Int ?? 0) >= 1, "the subscriber did not follow the primary: \(describe(result))")
                if waitReplicas {
                    #expect(result.status == 0, "\(describe(result))")
                    #expect(report["verdict"] as? String == "exactly-once", "\(describe(result))")
                    #expect(lost == 0 && report["keys_processed"] as? Int == 60000, "\(describe(result))")
                    #expect(report["replicas_not_checked"] == nil, "the writes waited for the one replica")
                } else {
                    // What a failover lost is said, never passed off as exactly-once.
                    #expect(lost >= 0)
                    #expect((report["verdict"] as? String == "exactly-once") == (lost == 0), "\(describe(result))")
                    #expect((result.status == 0) == (lost == 0), "\(describe(result))")
                }
                for server in group.servers {
                    let connection = try await connect(server, name: "itest:after")
                    defer { connection.close() }
                    #expect(try await notifyKeyspaceEvents(connection) == "", "setting not restored on \(server.port)")
                }
                let promoted = try await connect(group.replica, name: "itest:after")
                defer { promoted.close() }
                #expect(try await scanKeys(promoted, match: "expiry-bench*").isEmpty, "keys left on the new primary")
            }
        }

        /// `--wait-replicas 1` and the primary killed (`kill -9`) mid-run. Never back: the promoted replica has no
        /// replica left, so no write can be confirmed; the run ends within 2 × `--timeout` (10 s) + 10 s of the kill with
        /// that cause, and every figure equal to what the new primary holds (the run's keys are kept and read).
        /// Back 10 s after the kill: the sentinels make it the new primary's replica, and the run is exactly-once.
        @Test(.serialized, arguments: [false, true])
        func thePrimaryKilledUnderWaitReplicas(comesBack: Bool) async throws {
            try await withSentinels { group in
                let json = temporaryPath("sentinel-kill.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let killedAt = Mutex<ContinuousClock.Instant?>(nil)
                let runID = "skill\(comesBack ? 1 : 0)"
                let result = try await runExpiryBench(["--redis", group.url, "--keys", "60000", "--rate", "10000", "--consumers", "16", "--work", "1ms",
                                                       "--progress", "none", "--json", json, "--wait-replicas", "1", "--run-id", runID,
                                                       "--max-duration", "120s"] + (comesBack ? [] : ["--keep"]), limit: .seconds(150)) { _ in
                    _ = await waitUntil(.seconds(60)) { (try? await hasKeys(group.primary, match: "expiry-bench:*:processed")) == true }
                    try? await Task.sleep(for: .seconds(2))
                    await group.primary.crash()
                    killedAt.withLock { $0 = .now }
                    guard comesBack else { return }
                    try? await Task.sleep(for: .seconds(10))
                    try? await group.primary.restart()
                }
                let ended = ContinuousClock.now
                let killed = try #require(killedAt.withLock { $0 }, "the primary was never killed")
                let report = try readJSONReport(json)
                #expect(try await role(of: group.replica) == "master", "the replica was not promoted")
                if comesBack {
                    #expect(result.status == 0, "\(describe(result))")
                    #expect(report["verdict"] as? String == "exactly-once", "\(describe(result))")
                    #expect(report["lost"] as? Int == 0 && report["keys_processed"] as? Int == 60000, "\(describe(result))")
                    let promoted = try await connect(group.replica, name: "itest:after")
                    defer { promoted.close() }
                    #expect(try await scanKeys(promoted, match: "expiry-bench*").isEmpty, "keys left on the new primary")
                    return
                }
                #expect(result.status == 1, "\(describe(result))")
                #expect(ended - killed < .seconds(30), "the run ended \(ended - killed) after the kill (--timeout 10s): \(describe(result))")
                let problems = (report["problems"] as? [String] ?? []).joined(separator: "\n")
                #expect(problems.contains("no replica in sync"), "\(problems)")
                #expect(!problems.contains("could not be reached"), "\(problems)")
                #expect(report["lost"] as? Int == 0, "\(describe(result))")
                // Every figure is what the new primary holds.
                let promoted = try await connect(group.replica, name: "itest:after")
                defer { promoted.close() }
                let shard = RunKeyspace(namespace: "expiry-bench", runID: runID).shard(0, tag: nil)
                let pending = Int(try await promoted.send("XPENDING", shard.stream, shard.group).array?.first?.int ?? -1)
                #expect(report["keys_processed"] as? Int == Int(try await promoted.send("BITCOUNT", shard.processed).int ?? -1), "\(describe(result))")
                #expect(report["pending_at_end"] as? Int == pending, "\(describe(result))")
                #expect(report["due_at_end"] as? Int == Int(try await promoted.send("ZCARD", shard.dueIndex).int ?? -1), "\(describe(result))")
                // Unprocessed: every key not processed is still there, in the due index or the stream (a batch
                // written but never confirmed to the generator is there too, beyond keys_generated).
                let processed = report["keys_processed"] as? Int ?? 0
                let unprocessed = report["unprocessed"] as? Int ?? -1
                let inStream = Int(try await promoted.send("XLEN", shard.stream).int ?? -1)
                let due = Int(try await promoted.send("ZCARD", shard.dueIndex).int ?? -1)
                #expect(unprocessed >= (report["keys_generated"] as? Int ?? 0) - processed && unprocessed <= due + inStream, "\(describe(result))")
                let cleanup = try await runExpiryBench(["cleanup", "--redis", group.url, "--run-id", runID])
                #expect(cleanup.status == 0, "\(describe(cleanup))")
                #expect(try await scanKeys(promoted, match: "expiry-bench*").isEmpty, "keys left on the new primary after cleanup")
                #expect(try await notifyKeyspaceEvents(promoted) == "", "setting not restored on the new primary")
            }
        }
    }
}
