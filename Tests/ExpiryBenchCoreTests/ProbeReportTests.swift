import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// What the probes report (issue 27, cases 7 and 13): the window named only when it was waited, the probe's
/// refusals as a run's, its writes refused with their cause, and the settings it could not read as unknown.
@Suite("Probe reports")
struct ProbeReportTests {
    // MARK: Redis's own expiry lag

    /// A run that ended 0.15 s in: 75 probes neither heard nor past their 10 s window. Their figures are unknown,
    /// in words and as JSON `null`; the window is not said to have been waited.
    @Test func probesWhoseWindowWasNotWaitedAreUnknownNotMissing() throws {
        let probes = ExpiryProbes(window: .seconds(10))
        probes.wrote(75, deadline: 1_000)
        probes.wrote(5, deadline: 1_010)
        for _ in 0..<5 { probes.heard(deadline: 1_010, lagMilliseconds: 40) }
        let lag = probes.summary(serverNow: 1_150)
        #expect(lag.count == 5 && lag.missing == 0 && lag.unresolved == 75)
        #expect(!lag.windowWaited && !lag.isKnown)
        #expect(lag.line == "unknown (the run ended before the probes' 10s window: 75 of 80 probes neither heard nor past it; 5 heard in time)")
        #expect(!lag.line.contains("missing after"))
        let json = try #require(try JSONSerialization.jsonObject(with: ReportFile.encode(lag)) as? [String: Any])
        for key in ["p50", "p90", "p99", "max", "missing"] { #expect(json[key] is NSNull, "\(key): \(json[key] ?? "absent")") }
        #expect(json["count"] as? Int == 5 && json["unresolved"] as? Int == 75)

        // Once the window has passed, the same probes are missing, and said to be so after the window.
        let waited = probes.summary(serverNow: 11_011)
        #expect(waited.unresolved == 0 && waited.missing == 75 && waited.count == 5)
        #expect(waited.line.hasSuffix("(80 probes, 75 missing after 10s)"))
        let known = try #require(try JSONSerialization.jsonObject(with: ReportFile.encode(waited)) as? [String: Any])
        #expect(known["missing"] as? Int == 75 && known["p50"] as? Double == 10_000)
    }

    // MARK: The probe

    @Test func probeRefusesAReplicaAndAServerOlderThan62AsARunDoes() {
        let endpoint = RedisEndpoint(address: .tcp(host: "10.0.0.5", port: 6379))
        let replica = ServerFacts(info: "redis_version:7.0.15\r\nrole:slave\r\nmaster_host:10.0.0.4\r\nmaster_port:6380\r\n")
        let refusal = #expect(throws: RunError.self) { try Preflight.checkWritable(replica, endpoint: endpoint, by: .probe) }
        #expect(refusal?.status == .configuration)
        #expect(refusal?.message == "10.0.0.5:6379 is a replica of 10.0.0.4:6380: the probe writes keys, which a replica refuses or loses to its primary. Point --redis at the primary, 10.0.0.4:6380.")
        let old = ServerFacts(info: "redis_version:6.0.9\r\nrole:master\r\n")
        let tooOld = #expect(throws: RunError.self) { try Preflight.checkWritable(old, endpoint: endpoint, by: .probe) }
        #expect(tooOld?.status == .configuration)
        #expect(tooOld?.message.contains("Redis 6.0.9 at 10.0.0.5:6379 is too old: the probe needs SET ... PXAT, which came with Redis 6.2") == true)
        #expect(throws: Never.self) { try Preflight.checkWritable(ServerFacts(info: "redis_version:6.2.14\r\nrole:master\r\n"), endpoint: endpoint, by: .probe) }
    }

    @Test(arguments: [
        ("READONLY You can't write against a read only replica.", ExpiryBenchCore.ExitStatus.configuration, "Point --redis at its primary"),
        ("NOREPLICAS Not enough good replicas to write.", .configuration, "min-replicas-to-write"),
        ("OOM command not allowed when used memory > 'maxmemory'.", .configuration, "raise maxmemory"),
        ("NOPERM this user has no permissions to access one of the keys used as arguments", .authentication, "ACL SETUSER"),
    ])
    func refusedWritesNameTheCause(reply: String, status: ExpiryBenchCore.ExitStatus, advice: String) {
        let error = RunError.writesRefused(reply, by: "the probe", endpoint: RedisEndpoint(address: .tcp(host: "10.0.0.5", port: 6379)))
        #expect(error.status == status)
        #expect(error.message.contains(advice), "\(error.message)")
        if status == .configuration {
            #expect(error.message.hasPrefix("Redis at 10.0.0.5:6379 refused the probe's writes (\(reply.prefix { $0 != "." }))"), "\(error.message)")
        }
    }

    /// Settings the server would not tell are `null` in the JSON, with the reason beside them.
    @Test func probeSettingsNotReadAreNullWithTheirReason() throws {
        let server = ExpiryProbeRun.Report.Server(hz: nil, activeExpireEffort: nil, keysWithTTL: 12,
                                                  unknown: ["hz": "CONFIG GET hz refused: ERR unknown command 'CONFIG'"], name: "Redis", version: "7.0.15")
        let report = ExpiryProbeRun.Report(lag: ExpiryLag(p50: 50, p90: 60, p99: 70, max: 80, count: 10, missing: 0, windowMs: 10_000),
                                           ttlMs: 100, server: server, redis: "redis://127.0.0.1:6379")
        let json = try #require(try JSONSerialization.jsonObject(with: ReportFile.encode(report)) as? [String: Any])
        let settings = try #require(json["server"] as? [String: Any])
        #expect(settings["hz"] is NSNull && settings["active_expire_effort"] is NSNull)
        #expect(settings["keys_with_ttl"] as? Int == 12)
        #expect((settings["unknown"] as? [String: String])?["hz"] == "CONFIG GET hz refused: ERR unknown command 'CONFIG'")
        #expect(json["count"] as? Int == 10 && json["missing"] as? Int == 0 && (json["lag_ms"] as? [String: Double])?["p50"] == 50)
        #expect(server.describe(server.hz, as: "hz", key: "hz") == "hz unknown (CONFIG GET hz refused: ERR unknown command 'CONFIG')")
    }
}
