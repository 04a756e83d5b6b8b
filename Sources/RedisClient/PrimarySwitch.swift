import Synchronization

/// A primary replaced by another, as a client hears it: a sentinel's `+switch-master`, or a cluster slot map in
/// which a primary's slots went to its replica. What a failover is, seen from outside.
package struct PrimarySwitch: Sendable, Equatable {
    /// When it was heard, in milliseconds since the epoch.
    package var atMilliseconds: Int64
    /// The old and the new primary, `host:port`.
    package var from: String
    package var to: String

    package init(atMilliseconds: Int64, from: String, to: String) {
        self.atMilliseconds = atMilliseconds
        self.from = from
        self.to = to
    }
}

/// The switches heard for one group of servers (a sentinel group, a cluster), in order. The same switch heard
/// twice within a few seconds, or undone by a node that has not heard of it yet, is kept once.
final class SwitchLog: Sendable {
    private let entries = Mutex<[PrimarySwitch]>([])
    private static let echoWindowMilliseconds: Int64 = 10_000

    func record(from: String, to: String) {
        let now = WallClock.milliseconds()
        entries.withLock { entries in
            // A switch undone within 3 s is a node that had not heard of it yet (a real failback takes longer).
            let echo = entries.contains { earlier in
                let age = now - earlier.atMilliseconds
                return (age < Self.echoWindowMilliseconds && earlier.from == from && earlier.to == to)
                    || (age < 3_000 && earlier.from == to && earlier.to == from)
            }
            if !echo { entries.append(PrimarySwitch(atMilliseconds: now, from: from, to: to)) }
        }
    }

    var all: [PrimarySwitch] { entries.withLock { $0 } }
}

/// A stretch during which one connection's calls failed (no reply, a reply saying the server is no longer a
/// primary, or is loading, or the cluster is down): from its first failed call to its next call that succeeded.
package struct CallOutage: Sendable, Equatable {
    package var startMilliseconds: Int64
    package var endMilliseconds: Int64
    /// The server the first failed call went to, and the one the call that succeeded reached, `host:port`.
    package var failedAt: String
    package var resumedAt: String
    /// Which connection it was (outages of one connection count as one interrupted connection).
    package var connection: Int = 0
}

/// Every connection's outages in this process, for the report of a failover: how long the calls to the old
/// primary failed before one succeeded on the new one. A connection reports an outage only once it is over, so
/// the hot path costs one check of a local value.
package final class CallOutages: Sendable {
    package static let shared = CallOutages()
    private let entries = Mutex<[CallOutage]>([])
    /// Oldest entries go first beyond this: a long run against a flapping server keeps its last outages.
    private static let capacity = 50_000

    func record(_ outage: CallOutage) {
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeFirst(entries.count / 2) }
            entries.append(outage)
        }
    }

    /// The outages that ended at or after `milliseconds` (since the epoch).
    package func ended(since milliseconds: Int64) -> [CallOutage] {
        entries.withLock { $0.filter { $0.endMilliseconds >= milliseconds } }
    }
}

/// One connection's outage in progress, on the connection's own thread: the first failure since the last success.
struct OutageTracker {
    private static let numbers = Atomic<Int>(0)
    private let connection = OutageTracker.numbers.add(1, ordering: .relaxed).newValue
    private var failingSince: Int64?
    private var failedAt = ""

    /// The server is named only when an outage starts or ends: a call that succeeds as the last one did costs one
    /// check.
    /// - Parameter since: when the call that failed began, if it waited long before failing (an unconfirmed WAIT).
    mutating func failed(at server: @autoclosure () -> String, since: Int64? = nil) {
        if failingSince == nil {
            failingSince = since ?? WallClock.milliseconds()
            failedAt = server()
        }
    }

    mutating func succeeded(on server: @autoclosure () -> String) {
        guard let since = failingSince else { return }
        failingSince = nil
        CallOutages.shared.record(CallOutage(startMilliseconds: since, endMilliseconds: WallClock.milliseconds(), failedAt: failedAt, resumedAt: server(), connection: connection))
    }
}
