/// The names of every key a run owns. All of them start with `<namespace>:<run id>:`, so a run's data can be
/// told from the user's and removed without touching anything else.
public struct RunKeyspace: Sendable, Equatable {
    public let namespace: String
    public let runID: String

    public init(namespace: String, runID: String) {
        self.namespace = namespace
        self.runID = runID
    }

    /// `<namespace>:<run id>:`, the prefix of every key of the run.
    public var prefix: String { "\(namespace):\(runID):" }
    /// Prefix of the keys that expire (`<prefix>k:<index>`).
    public var dataPrefix: String { prefix + "k:" }
    /// Prefix of the per-key locks (`<prefix>lock:<index>`).
    public var lockPrefix: String { prefix + "lock:" }
    /// Sorted set of keys not yet published, scored by deadline (ms, server clock).
    public var dueIndex: String { prefix + "due" }
    /// How many keys the generator has written (its high-water mark).
    public var generatorMark: String { prefix + "generated" }
    /// The stream that consumers read.
    public var stream: String { prefix + "stream" }
    /// Bitmap of processed keys, by index.
    public var processed: String { prefix + "processed" }
    /// The record of one commit call, by claim token, so that a retried commit is answered, not redone.
    public func commitRecord(_ token: String) -> String { prefix + "commit:" + token }
    /// Stream of keys that failed too often.
    public var deadLetters: String { prefix + "dead" }
    /// Bitmap of dead-lettered keys, by index.
    public var deadBits: String { prefix + "deadbits" }
    /// A consumer's lease, kept alive by heartbeat while the consumer lives.
    public func lease(_ consumer: String) -> String { leasePrefix + consumer }
    /// Prefix of the lease keys.
    public var leasePrefix: String { prefix + "lease:" }
    /// Sorted set of consumers by lease deadline (ms, server clock): the sweeper's way to find dead consumers.
    public var leases: String { prefix + "leases" }
    /// Hash describing the run (settings, start time), for `inspect`.
    public var meta: String { prefix + "meta" }
    /// The run's keys that have no TTL of their own.
    public var bookkeepingKeys: [String] { [dueIndex, generatorMark, stream, processed, deadBits, deadLetters, meta, leases] }
    /// The consumer group's name.
    public var group: String { "workers" }

    /// The data key of key number `index`.
    public func dataKey(_ index: Int) -> String { dataPrefix + String(index) }

    /// The index of a data key of this run, or nil for any other key (the user's, another run's, a lock...).
    public func index(ofDataKey key: String) -> Int? {
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

    /// A new run id: the time in base 36 and a random suffix, short and sortable by start time.
    public static func newRunID() -> String {
        let seconds = Int(WallClock.milliseconds() / 1000)
        return String(seconds, radix: 36) + String(Int.random(in: 0..<1_679_616), radix: 36).leftPadded(to: 4)
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
