import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

extension Scenarios {
    /// A server that starts refusing writes mid-run (issue 27, case 8: `min-replicas-to-write 1` on a server
    /// without replicas): the run ends with Redis's cause, its figures as Redis holds them, the setting put back
    /// although writes are refused, and one line saying how many keys it could not remove and the command that
    /// does; `cleanup` says what it could not remove (exit 75) until writes are accepted again, then removes all.
    @Suite(.serialized)
    struct WritesRefusedTests {
        static let namespace = "itest-refused"

        /// `CONFIG SET min-replicas-to-write 1` mid-run on a server without replicas.
        @Test func writesRefusedMidRunAreNamedAndTheRunIsRemovedOnceAccepted() async throws {
            try await withRedis { server in
                let endpoint = server.endpoint
                try await expectRefusedRunNamedAndRemovable(server, runID: "norepl", keys: 60_000, refuse: {
                    try? await Task.sleep(for: .seconds(2))
                    let setter = try? await RedisConnection.connect(to: endpoint, name: "itest-setter", timeout: .seconds(5))
                    _ = try? await setter?.send("CONFIG", "SET", "min-replicas-to-write", "1")
                    setter?.close()
                }, allow: { admin in try await admin.send("CONFIG", "SET", "min-replicas-to-write", "0") })
            }
        }

        /// `min-replicas-to-write 1` on a primary whose only replica is stopped mid-run (`min-replicas-max-lag 1`:
        /// the primary refuses writes a second or two after the replica's last acknowledgement).
        @Test func replicaStoppedUnderMinReplicasToWrite() async throws {
            try await withRedis(extraArguments: ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "1"]) { primary in
                let replica = try await EmbeddedRedis.start(extraArguments: ["--replicaof", "127.0.0.1", String(primary.port), "--repl-diskless-sync-delay", "0"])
                do {
                    let admin = try await connect(primary, name: "itest-wait")
                    for _ in 0..<100 where ServerFacts.replicasInSync(in: try await admin.send("INFO", "replication").string ?? "") == 0 {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    admin.close()
                    try await expectRefusedRunNamedAndRemovable(primary, runID: "replgone", keys: 100_000, refuse: {
                        try? await Task.sleep(for: .seconds(2))
                        await stopOffThePool(replica)
                    }, allow: { admin in try await admin.send("CONFIG", "SET", "min-replicas-to-write", "0") })
                } catch {
                    await stopOffThePool(replica)
                    throw error
                }
                await stopOffThePool(replica)
            }
        }

        /// `CONFIG SET maxmemory 1` mid-run under noeviction: writes refused with OOM, but UNLINK and the setting's
        /// transaction are not refused for memory, so the run removes everything and puts the setting back.
        @Test func memoryFullMidRunIsNamedAndNothingIsLeft() async throws {
            try await withRedis { server in
                let admin = try await connect(server, name: "itest-admin")
                defer { admin.close() }
                let endpoint = server.endpoint
                let json = temporaryPath("oom.json")
                defer { try? FileManager.default.removeItem(atPath: json) }
                let result = try await runExpiryBench(["--redis", tcpURL(server), "--keys", "60000", "--rate", "10000", "--consumers", "8",
                                                       "--timeout", "3s", "--stall-timeout", "10s", "--max-duration", "40s",
                                                       "--namespace", Self.namespace, "--run-id", "oom", "--progress", "none", "--json", json],
                                                      whileRunning: { _ in
                    try? await Task.sleep(for: .seconds(2))
                    let setter = try? await RedisConnection.connect(to: endpoint, name: "itest-setter", timeout: .seconds(5))
                    _ = try? await setter?.send("CONFIG", "SET", "maxmemory", "1")
                    setter?.close()
                })
                try await admin.send("CONFIG", "SET", "maxmemory", "0")
                #expect(result.status == 1, "\(describe(result))")
                #expect(result.stdout.contains("refused the run's writes (OOM command not allowed when used memory > 'maxmemory'): its memory is full"),
                        "\(describe(result))")
                #expect(!result.combined.contains("could not be reached") && !result.stderr.contains("could not remove"), "\(describe(result))")
                let report = try readJSONReport(json)
                #expect(report["keys_processed"] as? Int != nil && report["lost"] as? Int == 0, "\(report["problems"] ?? "")")
                #expect(try await admin.send("DBSIZE") == .integer(0), "nothing of the run is left")
                #expect(try await notifyKeyspaceEvents(admin) == "")
            }
        }

        /// Runs `keys` keys at 10,000/s on `server` while `refuse` makes it refuse writes; checks the report, what
        /// Redis holds, the warning and its command, `cleanup` while writes are refused (75), then, after `allow`,
        /// that the printed command removes everything and the server is as found.
        func expectRefusedRunNamedAndRemovable(_ server: EmbeddedRedis, runID: String, keys: Int, refuse: @escaping @Sendable () async -> Void,
                                               allow: (RedisConnection) async throws -> Void) async throws {
            let admin = try await connect(server, name: "itest-admin")
            defer { admin.close() }
            let prefix = "\(Self.namespace):\(runID):"
            let json = temporaryPath("refused.json")
            defer { try? FileManager.default.removeItem(atPath: json) }
            let port = server.port
            let result = try await runExpiryBench(["--redis", tcpURL(server), "--keys", String(keys), "--rate", "10000", "--consumers", "8",
                                                   "--timeout", "3s", "--stall-timeout", "10s", "--max-duration", "40s",
                                                   "--namespace", Self.namespace, "--run-id", runID, "--progress", "none", "--json", json],
                                                  whileRunning: { _ in await refuse() })
            #expect(result.status == 1, "\(describe(result))")
            #expect(result.stdout.contains("refused the run's writes (NOREPLICAS Not enough good replicas to write): it has fewer replicas in sync than its min-replicas-to-write"),
                    "\(describe(result))")
            #expect(!result.combined.contains("could not be reached"), "\(describe(result))")

            // The figures are what Redis holds (writes are still refused: nothing has changed them since).
            let report = try readJSONReport(json)
            let processed = try await admin.send("BITCOUNT", prefix + "processed").int
            let due = try await admin.send("ZCARD", prefix + "due").int
            let pending = try await admin.send("XPENDING", prefix + "stream", "workers").array?.first?.int
            #expect((report["keys_processed"] as? Int).map(Int64.init) == processed, "report \(report["keys_processed"] ?? "nil"), Redis \(processed ?? -1)")
            #expect((report["due_at_end"] as? Int).map(Int64.init) == due)
            #expect((report["pending_at_end"] as? Int).map(Int64.init) == pending)
            #expect(report["lost"] as? Int == 0, "\(report["problems"] ?? "")")

            // The setting is back although writes are refused; the keys left are counted, with the command.
            #expect(try await notifyKeyspaceEvents(admin) == "")
            let left = try await scanKeys(admin, match: prefix + "*")
            #expect(!left.isEmpty, "the server refused the deletes: keys should be left")
            let warning = try #require(result.stderr.split(separator: "\n").first { $0.contains("could not remove") }, "\(describe(result))")
            #expect(warning.contains("could not remove \(Format.count(left.count)) keys of the run under \(prefix) at 127.0.0.1:\(port)"), "\(warning)")
            #expect(warning.contains("NOREPLICAS"), "\(warning)")
            let command = try #require(warning.components(separatedBy: "remove them with: ").last)
            let arguments = command.split(separator: " ").dropFirst().map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "'")) }
            #expect(arguments.first == "cleanup" && arguments.contains("--force"), "\(command)")
            #expect(arguments.firstIndex(of: "--redis").map { arguments.index(after: $0) < arguments.endIndex && arguments[arguments.index(after: $0)] == tcpURL(server) } == true, "\(command)")

            // cleanup while writes are still refused: says what is left, exit 75.
            let refusedCleanup = try await runExpiryBench(arguments, limit: .seconds(30))
            #expect(refusedCleanup.status == 75, "\(describe(refusedCleanup))")
            let stillLeft = try await scanKeys(admin, match: prefix + "*")
            #expect(refusedCleanup.stderr.contains("\(Format.count(stillLeft.count)) are still under \(prefix)") && refusedCleanup.stderr.contains("NOREPLICAS"),
                    "\(describe(refusedCleanup))")
            #expect(!refusedCleanup.stdout.contains("Removed"), "\(describe(refusedCleanup))")

            // Writes accepted again: the printed command removes everything, the record of the setting too.
            try await allow(admin)
            let cleanup = try await runExpiryBench(arguments, limit: .seconds(30))
            #expect(cleanup.status == 0, "\(describe(cleanup))")
            #expect(try await scanKeys(admin, match: prefix + "*") == [])
            #expect(try await admin.send("EXISTS", NotificationShare.standaloneKey) == .integer(0))
            #expect(try await admin.send("DBSIZE") == .integer(0), "nothing of the run is left")
            #expect(try await notifyKeyspaceEvents(admin) == "")
        }
    }
}
