import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import RedisClient

/// What the report says of a failover: the switches a cluster's slot map shows, how long the calls failed around
/// one, and the lines and JSON fields that show it.
@Suite("Failover report")
struct FailoverReportTests {
    private static func range(_ slots: ClosedRange<Int>, _ port: Int, replicas: [Int] = []) -> ClusterSlotRange {
        ClusterSlotRange(slots: slots, host: "127.0.0.1", port: port, replicas: replicas.map { ClusterNodeAddress(host: "127.0.0.1", port: $0) })
    }

    @Test func aPrimarysSlotsGoneToItsReplicaAreAFailoverAndAReshardingIsNot() {
        let topology = ClusterTopology(seed: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 7100)),
                                       ranges: [Self.range(0...8191, 7100, replicas: [7102]), Self.range(8192...16383, 7101, replicas: [7103])])
        // Slots moved to another primary (a resharding): no failover.
        topology.apply([Self.range(0...99, 7101, replicas: [7103]), Self.range(100...8191, 7100, replicas: [7102]), Self.range(8192...16383, 7101, replicas: [7103])])
        #expect(topology.switches.isEmpty)
        // The replica 7102 took over 7100's slots; 7100 is its replica now.
        topology.apply([Self.range(0...99, 7101, replicas: [7103]), Self.range(100...8191, 7102, replicas: [7100]), Self.range(8192...16383, 7101, replicas: [7103])])
        #expect(topology.switches.map { "\($0.from) → \($0.to)" } == ["127.0.0.1:7100 → 127.0.0.1:7102"])
        // A node that has not heard of it yet answers with the old map, then a later one with the new: one failover.
        topology.apply([Self.range(100...8191, 7100, replicas: [7102])])
        topology.apply([Self.range(100...8191, 7102, replicas: [7100])])
        #expect(topology.switches.count == 1)
        // A map learnt before gossip listed the replicas: the old primary listed as the new one's replica tells.
        let early = ClusterTopology(seed: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 7100)), ranges: [Self.range(0...16383, 7100)])
        early.apply([Self.range(0...16383, 7101, replicas: [7100])])
        #expect(early.switches.map { "\($0.from) → \($0.to)" } == ["127.0.0.1:7100 → 127.0.0.1:7101"])
    }

    /// A failover first learnt from a `MOVED` reply is logged the right way round, and a node that has not heard
    /// of it yet (its map gives the slots back to the old primary) neither moves the slots back nor logs a reversed
    /// failover (which would hide the real one as its echo); a later real failback is taken.
    @Test func aFailoverLearntFromMovedIsNotUndoneByAStaleMap() throws {
        let port = { (endpoint: RedisEndpoint) -> Int? in if case .tcp(_, let port) = endpoint.address { port } else { nil } }
        let topology = ClusterTopology(seed: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 7100)),
                                       ranges: [Self.range(0...8191, 7100, replicas: [7102]), Self.range(8192...16383, 7101, replicas: [7103])])
        topology.noteMoved(slot: 5, to: (host: "127.0.0.1", port: 7102))
        #expect(topology.switches.map { "\($0.from) → \($0.to)" } == ["127.0.0.1:7100 → 127.0.0.1:7102"])
        #expect(!topology.apply([Self.range(0...8191, 7100, replicas: [7102]), Self.range(8192...16383, 7101, replicas: [7103])]))
        #expect(port(topology.owner(ofSlot: 5)) == 7102 && topology.switches.count == 1)
        #expect(topology.apply([Self.range(0...8191, 7102, replicas: [7100]), Self.range(8192...16383, 7101, replicas: [7103])]))
        #expect(port(topology.owner(ofSlot: 6)) == 7102 && topology.switches.count == 1)
        // A failback told by MOVED within the window is taken (the switch log counts one undone within 3 s as an echo).
        topology.noteMoved(slot: 5, to: (host: "127.0.0.1", port: 7100))
        #expect(port(topology.owner(ofSlot: 5)) == 7100)
        #expect(topology.apply([Self.range(0...8191, 7100, replicas: [7102]), Self.range(8192...16383, 7101, replicas: [7103])]))
        #expect(port(topology.owner(ofSlot: 6)) == 7100)
        // A resharding to another primary is not a failover, and a map showing it is taken.
        #expect(topology.apply([Self.range(0...99, 7101, replicas: [7103]), Self.range(100...8191, 7100, replicas: [7102]), Self.range(8192...16383, 7101, replicas: [7103])]))
        #expect(port(topology.owner(ofSlot: 5)) == 7101)
    }

    @Test func unavailabilityRunsFromTheFirstFailureToTheFirstAndLastConnectionBack() {
        let primarySwitch = PrimarySwitch(atMilliseconds: 10_000, from: "a:1", to: "b:2")
        let outages = [
            CallOutage(startMilliseconds: 9_000, endMilliseconds: 10_400, failedAt: "a:1", resumedAt: "b:2", connection: 1),
            CallOutage(startMilliseconds: 9_200, endMilliseconds: 11_500, failedAt: "a:1", resumedAt: "b:2", connection: 2),
            // Failed at the new primary (its writes not yet confirmed), back there: the same connection again.
            CallOutage(startMilliseconds: 10_100, endMilliseconds: 10_900, failedAt: "b:2", resumedAt: "b:2", connection: 2),
            CallOutage(startMilliseconds: 10_200, endMilliseconds: 10_950, failedAt: "b:2", resumedAt: "b:2", connection: 3),
            // A connection pinned to the old node, back there when it came back: not the failover's.
            CallOutage(startMilliseconds: 8_000, endMilliseconds: 30_000, failedAt: "a:1", resumedAt: "a:1", connection: 4),
            // Another server's blip, and an outage long over before the switch: not this failover's.
            CallOutage(startMilliseconds: 9_500, endMilliseconds: 9_800, failedAt: "c:3", resumedAt: "c:3"),
            CallOutage(startMilliseconds: 1_000, endMilliseconds: 2_000, failedAt: "a:1", resumedAt: "a:1"),
        ]
        let found = FailoverWatch.unavailability(of: primarySwitch, in: outages)
        #expect(found.firstBack == 1_400 && found.allBack == 2_500 && found.connections == 3)
        let none = FailoverWatch.unavailability(of: primarySwitch, in: [])
        #expect(none.firstBack == 0 && none.allBack == 0 && none.connections == 0)
    }

    /// A connection's outage runs from its first failure (or from the start of a call that waited before it
    /// failed: an unconfirmed WAIT) to its next call through; later failures while it lasts change nothing.
    @Test func anOutageRunsFromTheFirstFailureToTheNextCallThrough() {
        let before = WallClock.milliseconds()
        var tracker = OutageTracker()
        tracker.succeeded(on: "unit-old:1")
        tracker.failed(at: "unit-old:1", since: before - 4_000)
        tracker.failed(at: "unit-new:2")
        tracker.succeeded(on: "unit-new:2")
        tracker.succeeded(on: "unit-new:2")
        let recorded = CallOutages.shared.ended(since: before).filter { $0.failedAt.hasPrefix("unit-") }
        #expect(recorded.count == 1)
        #expect(recorded.first?.startMilliseconds == before - 4_000)
        #expect(recorded.first?.failedAt == "unit-old:1" && recorded.first?.resumedAt == "unit-new:2")
    }

    private static func failover(lost: Int?) -> RunReport.Failover {
        RunReport.Failover(atMs: 4_120, via: "sentinel", from: "127.0.0.1:7301", to: "127.0.0.1:7302", writesUnavailableMs: 1_265,
                           firstWriteBackMs: 1_004, connectionsInterrupted: 22, keysRescued: 1_700, lost: lost, duplicateCommits: lost.map { _ in 0 })
    }

    @Test func eachFailoverIsALineAndTheChaosRequestToo() throws {
        var report = ReportFixture.report()
        report.failovers = [Self.failover(lost: 2)]
        report.chaos.failoverAskedAtMs = 2_365
        report.chaos.failoverAskedOf = "127.0.0.1:26401"
        report.chaos.failoverAnswer = "OK"
        report.settings.chaosFailover = true
        let lines = ReportPrinter.failoverLines(report)
        #expect(lines == [
            "  chaos failover            asked of 127.0.0.1:26401 at 2.4s: OK",
            "  failovers                 1 (sentinel)",
            "    at 4.1s  127.0.0.1:7301 → 127.0.0.1:7302: writes unavailable 1265ms (22 connections interrupted, the first call through 1004ms after the first failure), 1,700 keys rescued after it, 2 lost, 0 done twice",
        ])
        let json = try #require(try JSONSerialization.jsonObject(with: ReportFile.encode(report)) as? [String: Any])
        let failovers = try #require(json["failovers"] as? [[String: Any]])
        #expect(failovers.count == 1)
        #expect(Set(failovers[0].keys) == ["at_ms", "via", "from", "to", "writes_unavailable_ms", "first_write_back_ms", "connections_interrupted",
                                           "keys_rescued", "lost", "duplicate_commits"])
        let chaos = try #require(json["chaos"] as? [String: Any])
        #expect(chaos["failover_answer"] as? String == "OK")
        #expect((json["settings"] as? [String: Any])?["chaos_failover"] as? Bool == true)
    }

    @Test func severalFailoversDoNotClaimWhichLostWhatAndNoneIsNotPrinted() {
        var report = ReportFixture.report()
        report.failovers = [Self.failover(lost: nil), Self.failover(lost: nil)]
        let lines = ReportPrinter.failoverLines(report)
        #expect(lines.first == "  failovers                 2 (sentinel): the run's 2 lost keys and 1 keys done twice are not told apart by failover")
        #expect(lines.count == 3 && !lines[1].contains("lost"))
        report.failovers = []
        #expect(ReportPrinter.failoverLines(report).isEmpty)
        report.settings.chaosFailover = true
        #expect(ReportPrinter.failoverLines(report) == ["  chaos failover            not asked: the run ended before its moment came", "  failovers                 none heard of"])
    }
}
