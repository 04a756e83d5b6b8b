import Foundation
import Synchronization

/// The sentinels that watch one primary, and the name they know it by (`redis-sentinel://…#name`).
package struct SentinelGroup: Sendable, Equatable {
    package struct Node: Sendable, Equatable {
        package var host: String
        package var port: Int
        package init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    package var sentinels: [Node]
    package var master: String

    package init(sentinels: [Node], master: String) {
        self.sentinels = sentinels
        self.master = master
    }

    /// A sentinel as an endpoint: no credentials (the URL's are the primary's), TLS as the primary's.
    package func endpoint(_ node: Node, tls: TLSSettings?) -> RedisEndpoint {
        RedisEndpoint(address: .tcp(host: node.host, port: node.port), tls: tls)
    }
}

/// Finding a group's primary, after the Redis Sentinel client rules: ask the sentinels in turn for the primary's
/// address (`SENTINEL get-master-addr-by-name`); the caller then checks that the server there is a primary (ROLE),
/// and connects again when `SentinelWatch` hears a `+switch-master`. Blocking: call it on a connection's thread.
enum SentinelResolver {
    static func primary(of group: SentinelGroup, tls: TLSSettings?, timeoutMilliseconds: Int) throws -> (host: String, port: Int) {
        var reasons: [String] = []
        let found: (host: String, port: Int)? = askInTurn(group, tls: tls, timeoutMilliseconds: timeoutMilliseconds,
                                                          RedisCommand("SENTINEL", "get-master-addr-by-name", group.master)) { node, answer in
            switch answer {
            case .failure(let error):
                reasons.append("\(node.host):\(node.port): \(error)")
            case .success(.error(let message)):
                reasons.append("\(node.host):\(node.port): \(message)")
            case .success(let reply):
                guard let pair = reply.array, pair.count == 2, let host = pair[0].string, let port = pair[1].string.flatMap({ Int($0) }) else {
                    reasons.append("\(node.host):\(node.port) knows no primary named '\(group.master)'")
                    return nil
                }
                return (host, port)
            }
            return nil
        }
        if let found { return found }
        let unknown = !reasons.isEmpty && reasons.allSatisfy { $0.contains("knows no primary named") }
        // A name no sentinel knows is an answer, not an outage: it is not retried.
        throw RedisError(unknown ? .server : .io, "no sentinel named the primary '\(group.master)': " + reasons.joined(separator: "; "),
                         serverMessage: unknown ? "no sentinel knows a primary named '\(group.master)'" : nil)
    }

    /// Sends `command` to the group's sentinels in turn, each on a connection of its own, until `take` makes a
    /// value of an answer (a reply, or the failure to get one); nil when none did.
    static func askInTurn<T>(_ group: SentinelGroup, tls: TLSSettings?, timeoutMilliseconds: Int, _ command: RedisCommand,
                             take: (SentinelGroup.Node, Result<RESPValue, Error>) -> T?) -> T? {
        for node in group.sentinels {
            let context = HiredisContext(endpoint: group.endpoint(node, tls: tls), clientName: nil)
            defer { context.disconnect() }
            let answer = Result { () throws -> RESPValue in
                try context.connect(timeoutMilliseconds: timeoutMilliseconds)
                return try context.roundTrip([command], timeoutMilliseconds: timeoutMilliseconds)[0]
            }
            if let value = take(node, answer) { return value }
        }
        return nil
    }
}

extension SentinelResolver {
    /// A replica as the sentinels see it.
    struct KnownReplica: Sendable, Equatable {
        var address: String
        /// Sentinel's flags: `slave`, and `s_down`, `o_down`, `disconnected` when it is not reachable.
        var flags: [String]
        /// True when it reports itself a replica with its link to the primary up.
        var attached: Bool
    }

    /// The replicas of the group's primary as the first sentinel that answers knows them (`SENTINEL REPLICAS`).
    static func replicas(of group: SentinelGroup, tls: TLSSettings?, timeoutMilliseconds: Int) throws -> [KnownReplica] {
        var lastError: Error = RedisError(.io, "no sentinel answered")
        let known: [KnownReplica]? = askInTurn(group, tls: tls, timeoutMilliseconds: timeoutMilliseconds, RedisCommand("SENTINEL", "REPLICAS", group.master)) { _, answer in
            do {
                guard let entries = try answer.get().unwrapped(for: "SENTINEL REPLICAS").array else { return nil }
                return entries.map { entry in
                    let fields = entry.fieldMap
                    return KnownReplica(address: "\(fields["ip"] ?? "?"):\(fields["port"] ?? "?")",
                                        flags: (fields["flags"] ?? "").split(separator: ",").map(String.init),
                                        attached: fields["role-reported"] == "slave" && fields["master-link-status"] == "ok")
                }
            } catch {
                lastError = error
                return nil
            }
        }
        guard let known else { throw lastError }
        return known
    }
}

/// Hears the sentinels' `+switch-master` for each group in use, on a thread of its own per group, and counts the
/// switches: a connection made under an older count finds the primary again before its next call (the old primary
/// may stay a primary for seconds after the switch, and what it takes then is lost). Losing the sentinels'
/// channel counts as a switch too: one may have happened meanwhile.
package final class SentinelWatch: Sendable {
    package static let shared = SentinelWatch()
    private let generations = Mutex<[String: Int]>([:])
    /// The `+switch-master`s heard for each group, with their addresses.
    private let logs = Mutex<[String: SwitchLog]>([:])

    /// The number of switches heard for `group` so far; starts watching it on first use.
    func generation(of group: SentinelGroup, tls: TLSSettings?) -> Int {
        let key = Self.key(of: group)
        let (value, isNew) = generations.withLock { table -> (Int, Bool) in
            if let value = table[key] { return (value, false) }
            table[key] = 0
            return (0, true)
        }
        if isNew {
            let thread = Thread { [self] in watch(group, key: key, tls: tls) }
            thread.name = "expiry-bench:sentinel-watch"
            thread.start()
        }
        return value
    }

    /// The primary switches heard for `group` (`+switch-master`), in order; none while it is not watched.
    package func switches(of group: SentinelGroup) -> [PrimarySwitch] {
        switchLog(Self.key(of: group)).all
    }

    private static func key(of group: SentinelGroup) -> String {
        group.master + "@" + group.sentinels.map { "\($0.host):\($0.port)" }.joined(separator: ",")
    }

    private func switchLog(_ key: String) -> SwitchLog {
        logs.withLock { logs in
            if let log = logs[key] { return log }
            let log = SwitchLog()
            logs[key] = log
            return log
        }
    }

    private func bump(_ key: String) { generations.withLock { $0[key, default: 0] += 1 } }

    /// `host:port` as `RedisEndpoint.addressDescription` writes it.
    private static func address(_ host: String, _ port: String) -> String {
        RedisEndpoint(address: .tcp(host: host, port: Int(port) ?? 0)).addressDescription
    }

    private func watch(_ group: SentinelGroup, key: String, tls: TLSSettings?) {
        var index = 0
        while true {
            let node = group.sentinels[index % group.sentinels.count]
            index += 1
            let context = HiredisContext(endpoint: group.endpoint(node, tls: tls), clientName: "expiry-bench:sentinel-watch")
            var subscribed = false
            do {
                try context.connect(timeoutMilliseconds: 2000)
                try context.write([RedisCommand("SUBSCRIBE", "+switch-master")])
                subscribed = true
                while true {
                    guard let reply = try context.readPushed(waitMilliseconds: 1000), let items = reply.array, items.count == 3,
                          items[0].string == "message", let payload = items[2].string else { continue }
                    // "<name> <old host> <old port> <new host> <new port>"
                    let fields = payload.split(separator: " ").map(String.init)
                    if fields.first == group.master {
                        log.debug("sentinel \(node.host):\(node.port): +switch-master \(payload)")
                        if fields.count == 5 {
                            switchLog(key).record(from: Self.address(fields[1], fields[2]), to: Self.address(fields[3], fields[4]))
                        }
                        bump(key)
                    }
                }
            } catch {
                context.disconnect()
                if subscribed { bump(key) }
                usleep(200_000)
            }
        }
    }
}
