import ExpiryPipeline
import RedisClient

extension Evictions.Reading {
    /// Reads `evicted_keys` (INFO stats), `maxmemory_policy` (INFO memory) and the CPU Redis used (INFO cpu) on
    /// every primary, in one round trip each. A primary that cannot be read, or refuses INFO, makes the count and
    /// the CPU unknown, with its reason; the policies read are kept.
    /// - Parameter patience: how long a primary may stay unreachable before the reading gives up.
    static func read(_ nodes: [RedisConnection], patience: Duration = .seconds(1)) async -> Self {
        var total: Int? = 0
        var policies: [String] = []
        var unreadable: String?
        var cpu: Double? = 0
        for node in nodes {
            do {
                let replies = try await withRetries(giveUpAfter: patience) {
                    try await node.pipeline([RedisCommand("INFO", "stats"), RedisCommand("INFO", "memory"), RedisCommand("INFO", "cpu")])
                }
                let cpuInfo = replies[2].string ?? ""
                let used = ["used_cpu_user", "used_cpu_sys"].map { ServerFacts.field($0, in: cpuInfo).flatMap { Double($0) } }
                cpu = used[0].flatMap { user in used[1].flatMap { sys in cpu.map { $0 + user + sys } } }
                if case .error(let message) = replies[1] {
                    unreadable = unreadable ?? "INFO memory refused at \(node.endpoint.addressDescription): \(message)"
                } else if let policy = ServerFacts.field("maxmemory_policy", in: replies[1].string ?? "") {
                    policies.append(policy)
                }
                if case .error(let message) = replies[0] {
                    unreadable = unreadable ?? "INFO stats refused at \(node.endpoint.addressDescription): \(message)"
                    total = nil
                } else if let evicted = ServerFacts.field("evicted_keys", in: replies[0].string ?? "").flatMap({ Int($0) }) {
                    total = total.map { $0 + evicted }
                } else {
                    total = nil
                }
            } catch {
                unreadable = unreadable ?? "INFO could not be read at \(node.endpoint.addressDescription): \(error)"
                total = nil
                cpu = nil
            }
        }
        return Self(evictedKeys: unreadable == nil ? total : nil, policies: policies, unreadable: unreadable, cpuSeconds: cpu)
    }
}
