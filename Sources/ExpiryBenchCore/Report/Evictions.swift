import ExpiryPipeline

/// What Redis evicted while the run went: `evicted_keys` (INFO stats) and `maxmemory-policy` (INFO memory), read
/// on every primary at the run's start and at its end. The count is the difference, summed over the primaries;
/// unknown (nil, with `unknown` saying why) when a reading failed or the counter went down (a restart, CONFIG
/// RESETSTAT), never a zero that was not read.
package struct Evictions: Sendable, Equatable {
    /// One reading of every primary.
    package struct Reading: Sendable, Equatable {
        /// `evicted_keys`, summed over the primaries; nil when a primary's could not be read.
        package var evictedKeys: Int?
        /// Each primary's `maxmemory-policy`, in the primaries' order; empty when not read.
        package var policies: [String]
        /// Why the reading failed, if it did.
        package var unreadable: String?
        /// The CPU Redis used so far (`used_cpu_user` + `used_cpu_sys` of INFO cpu, seconds), summed over the
        /// primaries; nil when a primary's could not be read. For the run's weight on the server (`RedisCPU`).
        package var cpuSeconds: Double?

        package init(evictedKeys: Int?, policies: [String], unreadable: String? = nil, cpuSeconds: Double? = nil) {
            (self.evictedKeys, self.policies, self.unreadable, self.cpuSeconds) = (evictedKeys, policies, unreadable, cpuSeconds)
        }
    }

    /// Keys Redis evicted between the two readings; nil when unknown.
    package var count: Int?
    /// The policy in force (at the end, else at the start), "a, b" when the primaries differ, "a → b" when it
    /// changed during the run; nil when neither reading could read it.
    package var policy: String?
    /// Why `count` is unknown.
    package var unknown: String?

    package init(count: Int?, policy: String?, unknown: String? = nil) {
        (self.count, self.policy, self.unknown) = (count, policy, unknown)
    }

    /// The evictions between two readings.
    package init(start: Reading, end: Reading) {
        let named = { (policies: [String]) -> String? in
            let distinct = policies.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            return distinct.isEmpty ? nil : distinct.joined(separator: ", ")
        }
        let (before, after) = (named(start.policies), named(end.policies))
        policy = before.flatMap { b in after.map { $0 == b ? b : "\(b) → \($0)" } } ?? after ?? before
        if let reason = start.unreadable ?? end.unreadable {
            unknown = reason
        } else if let first = start.evictedKeys, let last = end.evictedKeys {
            if last >= first {
                count = last - first
            } else {
                unknown = "evicted_keys went down from \(Format.count(first)) to \(Format.count(last)) during the run: the server restarted or its statistics were reset"
            }
        } else {
            unknown = "INFO stats had no evicted_keys"
        }
    }

    /// Whether the policy lets Redis evict keys without a TTL (the user's, whatever they are).
    package var evictsAnyKey: Bool { policy?.contains("allkeys") ?? false }

    /// The report's line, or nil when Redis evicted nothing, or was not asked, or could not be asked under a
    /// policy that does not evict.
    package var line: String? {
        let under = policy.map { " under maxmemory-policy \($0)" } ?? ""
        guard let count else {
            guard let unknown, policy != "noeviction" else { return nil }
            return "unknown (\(unknown))\(under)"
        }
        guard count > 0 else { return nil }
        let whose = evictsAnyKey ? "keys of any owner, the user's included" : "keys with a TTL, which every key of the run but its locks has, the user's with a TTL too"
        return "\(Format.count(count)) during the run\(under): Redis removed \(whose), to stay under maxmemory. Raise maxmemory, lower --max-outstanding, or use noeviction"
    }

    /// The cause of the run's data gone missing, when Redis evicted keys during the run; nil otherwise.
    package var causeOfMissingData: String? {
        guard let count, count > 0 else { return nil }
        return "Redis evicted \(Format.count(count)) keys during the run\(policy.map { " under maxmemory-policy \($0)" } ?? ""), the run's among them: raise maxmemory or use maxmemory-policy noeviction"
    }
}
