import Synchronization
import ExpiryPipeline
import RedisClient

/// Where a run hears of failovers: the sentinels' `+switch-master` for a Sentinel-managed primary, or the slot map
/// of a cluster (a primary's slots gone to its replica). A single server named directly has no such source.
enum FailoverSource: Sendable {
    case sentinel(SentinelGroup)
    case cluster(ClusterTopology)

    init?(_ servers: RunServers) {
        if let cluster = servers.cluster {
            self = .cluster(cluster)
        } else if case .sentinel(let group) = servers.endpoint.address {
            self = .sentinel(group)
        } else {
            return nil
        }
    }

    var switches: [PrimarySwitch] {
        switch self {
        case .sentinel(let group): SentinelWatch.shared.switches(of: group)
        case .cluster(let topology): topology.switches
        }
    }

    /// The report's name for it.
    var name: String {
        switch self {
        case .sentinel: "sentinel"
        case .cluster: "cluster"
        }
    }
}

/// Notes each failover of the run as it is heard, with the keys rescued until then, so that the report can say
/// what each one cost: when, how long the calls to the old primary failed before one succeeded on the new one
/// (`CallOutages`), the keys the sweeper rescued after it, and what the run lost.
final class FailoverWatch: Sendable {
    private struct Heard {
        let primarySwitch: PrimarySwitch
        let rescuedBefore: Int
    }
    private let source: FailoverSource
    private let counters: RunCounters
    /// When the run started, in milliseconds since the epoch.
    private let since: Int64
    private let heard = Mutex<[Heard]>([])

    init(source: FailoverSource, counters: RunCounters, since: Int64) {
        self.source = source
        self.counters = counters
        self.since = since
    }

    /// Looks for new switches every 100 ms until the run stops.
    func run(shouldStop: @Sendable () -> Bool) async {
        while !shouldStop() {
            poll()
            try? await Task.sleep(for: .milliseconds(100))
        }
        poll()
    }

    /// Notes the switches heard since the last look.
    func poll() {
        let switches = source.switches.filter { $0.atMilliseconds >= since }
        let rescued = counters[\.publishedBySweeper]
        heard.withLock { heard in
            for primarySwitch in switches.dropFirst(heard.count) {
                heard.append(Heard(primarySwitch: primarySwitch, rescuedBefore: rescued))
            }
        }
    }

    /// The report's failovers. What was lost and done twice can be told per failover only when there was one:
    /// Redis's data does not say which failover lost which key.
    func failovers(lost: Int?, duplicates: Int?) -> [RunReport.Failover] {
        poll()
        let heard = heard.withLock { $0 }
        let outages = CallOutages.shared.ended(since: since)
        let rescuedAtEnd = counters[\.publishedBySweeper]
        return heard.enumerated().map { number, entry in
            let next = number + 1 < heard.count ? heard[number + 1].rescuedBefore : rescuedAtEnd
            let unavailable = Self.unavailability(of: entry.primarySwitch, in: outages)
            return RunReport.Failover(
                atMs: Double(entry.primarySwitch.atMilliseconds - since), via: source.name,
                from: entry.primarySwitch.from, to: entry.primarySwitch.to,
                writesUnavailableMs: Double(unavailable.allBack), firstWriteBackMs: Double(unavailable.firstBack),
                connectionsInterrupted: unavailable.connections,
                keysRescued: max(0, next - entry.rescuedBefore),
                lost: heard.count == 1 ? lost : nil, duplicateCommits: heard.count == 1 ? duplicates : nil)
        }
    }

    /// How long the calls failed around `primarySwitch`: from the first failure of a call to the old primary (or
    /// of one that then went through on the new one), within 5 s of the switch or before it, to the first call that
    /// went through on the new primary (`firstBack`), and to the moment every connection interrupted had a call
    /// through again (`allBack`). Zeros when no call failed (the connections moved before any did).
    static func unavailability(of primarySwitch: PrimarySwitch, in outages: [CallOutage]) -> (firstBack: Int64, allBack: Int64, connections: Int) {
        let at = primarySwitch.atMilliseconds
        let related = outages.filter {
            ($0.failedAt == primarySwitch.from || $0.resumedAt == primarySwitch.to) && $0.resumedAt != primarySwitch.from
                && $0.endMilliseconds >= at - 5_000 && $0.startMilliseconds <= at + 5_000
        }
        guard let start = related.map(\.startMilliseconds).min(), let last = related.map(\.endMilliseconds).max() else { return (0, 0, 0) }
        let first = related.filter { $0.resumedAt == primarySwitch.to }.map(\.endMilliseconds).min() ?? last
        return (max(0, first - start), max(0, last - start), Set(related.map(\.connection)).count)
    }
}
