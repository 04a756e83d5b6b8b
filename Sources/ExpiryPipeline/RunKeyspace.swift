import RedisClient

/// The names of every key a run owns. All of them start with `<namespace>:<run id>:`, so a run's data can be
/// told from the user's and removed without touching anything else.
///
/// A run is split into shards (`ShardKeyspace`), each with its own stream, due index, processed bitmap, locks and
/// data keys. On a single server the run has one shard whose keys carry no hash tag (`<prefix>stream`). In a
/// cluster every shard's keys carry the shard's hash tag (`<prefix>{<tag>}:stream`), so that all keys one script
/// touches sit in one slot, and the run-level keys named here carry the run's tag (`<prefix>{<run id>}:meta`).
package struct RunKeyspace: Sendable, Equatable {
    package let namespace: String
    package let runID: String
    /// Hash tag of the run-level keys; nil on a single server.
    package let runTag: String?

    package init(namespace: String, runID: String, cluster: Bool = false) {
        self.namespace = namespace
        self.runID = runID
        self.runTag = cluster ? runID : nil
        let prefix = "\(namespace):\(runID):"
        self.prefix = prefix
        self.runPrefix = cluster ? prefix + "{\(runID)}:" : prefix
    }

    /// The keys of shard `index`, tagged `tag` (nil: no tag, only for a run of one shard on a single server).
    package func shard(_ index: Int, tag: String?) -> ShardKeyspace {
        ShardKeyspace(run: self, index: index, tag: tag)
    }

    /// `<namespace>:<run id>:`, the prefix of every key of the run.
    package let prefix: String
    /// Prefix of the run-level keys (meta, leases).
    package let runPrefix: String
    /// A consumer's lease, kept alive by heartbeat while the consumer lives.
    package func lease(_ consumer: String) -> String { leasePrefix + consumer }
    /// Prefix of the lease keys.
    package var leasePrefix: String { runPrefix + "lease:" }
    /// Sorted set of consumers by lease deadline (ms, server clock): the sweeper's way to find dead consumers.
    package var leases: String { runPrefix + "leases" }
    /// Hash describing the run (settings, start time), for `inspect`.
    package var meta: String { runPrefix + "meta" }
    /// The run-level keys that have no TTL of their own: they carry `safetyTTL` from their first write.
    package var runBookkeepingKeys: [String] { [meta, leases] }

    /// The TTL every key of a run carries (but the locks, and every key of a run kept with `--keep`), renewed
    /// while the run lives, so that a run killed outright leaves nothing for more than this long.
    package static let safetyTTL: Duration = .seconds(3600)

    /// A new run id: the time in base 36 and a random suffix, short and sortable by start time.
    package static func newRunID() -> String {
        let seconds = Int(WallClock.milliseconds() / 1000)
        return String(seconds, radix: 36) + String(Int.random(in: 0..<1_679_616), radix: 36).leftPadded(to: 4)
    }
}

/// The keys of one shard of a run: its stream and group, due index, bitmaps, locks, data and probe keys, tally and
/// commit records, all under the shard's hash tag in a cluster. The run-level keys are `run`'s.
package struct ShardKeyspace: Sendable, Equatable {
    /// The run this shard belongs to.
    package let run: RunKeyspace
    /// Hash tag of this shard's keys; nil for the untagged single shard.
    package let shardTag: String?
    /// This shard's number, 0 ..< shard count; data key `i` lives in shard `i % shard count`.
    package let shardIndex: Int

    package init(run: RunKeyspace, index: Int, tag: String?) {
        self.run = run
        self.shardIndex = index
        self.shardTag = tag
        let shardPrefix = tag.map { run.prefix + "{\($0)}:" } ?? run.prefix
        self.shardPrefix = shardPrefix
        self.dataPrefix = shardPrefix + "k:"
        self.probePrefix = shardPrefix + "probe:"
    }

    /// Prefix of this shard's keys.
    package let shardPrefix: String
    /// Prefix of the keys that expire (`<prefix>k:<index>`).
    package let dataPrefix: String
    /// Prefix of the per-key locks (`<prefix>lock:<index>`).
    package var lockPrefix: String { shardPrefix + "lock:" }
    /// Sorted set of keys not yet published, scored by deadline (ms, server clock).
    package var dueIndex: String { shardPrefix + "due" }
    /// How many keys the generator has written (its high-water mark).
    package var generatorMark: String { shardPrefix + "generated" }
    /// The stream that consumers read.
    package var stream: String { shardPrefix + "stream" }
    /// Bitmap of processed keys, by index.
    package var processed: String { shardPrefix + "processed" }
    /// Hash of each consumer's last commit call (its name and codes), so that a retried commit is answered, not
    /// redone. It has no TTL of its own: it adds nothing to what Redis's expiry cycle samples.
    package var commitRecords: String { shardPrefix + "commits" }
    /// Prefix of the probe keys (`<prefix>probe:<deadline ms>:<n>`): keys that expire like the data keys but that
    /// nothing touches, so their expired events measure Redis's own expiry lag. They are not part of the pipeline.
    package let probePrefix: String
    /// The probe key number `number`, due at `deadline` (ms, server clock).
    package func probeKey(deadline: Int64, number: Int) -> String { probePrefix + "\(deadline):\(number)" }

    /// The deadline of a probe key of this shard, or nil for any other key.
    package func deadline(ofProbeKey key: String) -> Int64? {
        guard key.hasPrefix(probePrefix) else { return nil }
        let rest = key.utf8.dropFirst(probePrefix.utf8.count)
        guard let colon = rest.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        return Int64(String(decoding: rest[..<colon], as: UTF8.self))
    }
    /// Stream of keys that failed too often.
    package var deadLetters: String { shardPrefix + "dead" }
    /// Bitmap of dead-lettered keys, by index.
    package var deadBits: String { shardPrefix + "deadbits" }
    /// Hash of this shard's tallies, kept by the commit script: `c:<consumer>` first commits per consumer,
    /// `done` keys finished (first commits and dead letters), `dup` repeated commits. Every process's
    /// consumers add to it, so the driver reports all of them.
    package var tally: String { shardPrefix + "tally" }
    /// Scratch key for the verification's bitmap overlap.
    package var overlap: String { shardPrefix + "overlap" }
    /// This shard's keys that have no TTL of their own: they carry the run's safety TTL from their first write.
    package var shardBookkeepingKeys: [String] { [dueIndex, generatorMark, stream, processed, deadBits, deadLetters, tally, commitRecords] }
    /// The consumer group's name.
    package var group: String { "workers" }

    /// The data key of key number `index`.
    package func dataKey(_ index: Int) -> String { dataPrefix + String(index) }

    /// The index of a data key of this run, or nil for any other key (the user's, another run's, a lock...).
    package func index(ofDataKey key: String) -> Int? {
        guard key.hasPrefix(dataPrefix) else { return nil }
        let digits = key.utf8.dropFirst(dataPrefix.utf8.count)
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }
}

extension String {
    /// The text right-aligned in `width` columns, filled on the left with `pad`.
    package func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
