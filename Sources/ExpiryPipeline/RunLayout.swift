
/// How a run is spread: its run-level keys and its shards. Each shard gets a range of the data keys (`ranges`).
///
/// On a single server a run has one untagged shard unless asked for more. In a cluster each shard's hash tag
/// is chosen so that the shards are spread evenly over the primaries (shard `j` on primary `j % primaries`),
/// and every key a script touches is in the shard's one slot.
package struct RunLayout: Sendable, Equatable {
    /// The run-level keys (meta, leases), and the run's names.
    package let run: RunKeyspace
    /// Every shard, by index.
    package let shards: [ShardKeyspace]

    package init(run: RunKeyspace, tags: [String?]) {
        self.run = run
        self.shards = tags.enumerated().map { run.shard($0.offset, tag: $0.element) }
    }

    /// Splits keys `0 ..< keys` into one contiguous range per shard, in proportion to `weights` (the consumers
    /// reading each shard), so that every shard's keys take its consumers about the same time.
    package static func ranges(keys: Int, weights: [Int]) -> [Range<Int>] {
        let total = weights.reduce(0, +)
        guard !weights.isEmpty else { return [] }
        guard total > 0 else { return ranges(keys: keys, weights: weights.map { _ in 1 }) }
        var ranges: [Range<Int>] = []
        var start = 0
        var cumulative = 0
        for weight in weights {
            cumulative += weight
            let end = Int((Double(keys) * Double(cumulative) / Double(total)).rounded())
            ranges.append(start..<max(start, end))
            start = max(start, end)
        }
        return ranges
    }

    /// The shard a process's consumer number `index` reads, when `before` consumers (of the driver and of
    /// processes that joined earlier) are already spread: round robin over all of them, so the shards stay even.
    package func shard(forConsumer index: Int, after before: Int = 0) -> Int { (before + index) % shards.count }

    /// Shard tags for `count` shards on a single server: none for one shard, `<run id>.<n>` otherwise.
    package static func singleServerTags(runID: String, count: Int) -> [String?] {
        count == 1 ? [nil] : (0..<count).map { "\(runID).\($0)" }
    }

    /// Shard tags for `count` shards over `primaries` primaries: shard `j` gets the first tag `<run id>.<n>` not yet
    /// taken whose slot `primaryOf` places on primary `j % primaries`.
    package static func clusterTags(runID: String, count: Int, primaries: Int, primaryOf: (String) -> Int) -> [String?] {
        var tags: [String?] = []
        var candidate = 0
        var spare: [Int: [String]] = [:]
        for shard in 0..<count {
            let wanted = shard % max(1, primaries)
            if var waiting = spare[wanted], !waiting.isEmpty {
                tags.append(waiting.removeFirst())
                spare[wanted] = waiting
                continue
            }
            while true {
                let tag = "\(runID).\(candidate)"
                candidate += 1
                let owner = primaryOf(tag)
                // A primary owning no slot would never match: after many tries, any tag does.
                if owner == wanted || candidate > 100_000 { tags.append(tag); break }
                spare[owner, default: []].append(tag)
            }
        }
        return tags
    }

    /// The tags as stored in the run's meta hash (comma-separated; empty for the untagged single shard).
    package var storedTags: String { shards.map { $0.shardTag ?? "" }.joined(separator: ",") }

    /// The layout stored in a run's meta hash by `storedTags`.
    package init(run: RunKeyspace, storedTags: String) {
        let tags = storedTags.split(separator: ",", omittingEmptySubsequences: false).map { $0.isEmpty ? nil : String($0) }
        self.init(run: run, tags: tags.isEmpty ? [nil] : tags)
    }

    /// The deadline of a probe key of any shard of this run, else nil.
    package func probeDeadline(of key: String) -> Int64? {
        for shard in shards {
            if let deadline = shard.deadline(ofProbeKey: key) { return deadline }
        }
        return nil
    }

    /// Every data key's prefix matched against `key`: the shard and index of a data key of this run, else nil.
    package func locate(dataKey key: String) -> (shard: Int, index: Int)? {
        for shard in shards {
            if let index = shard.index(ofDataKey: key) { return (shard.shardIndex, index) }
        }
        return nil
    }
}
