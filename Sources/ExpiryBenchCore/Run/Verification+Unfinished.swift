import ExpiryPipeline
import RedisClient

/// The keys of a run that ended neither committed nor dead-lettered, told apart key by key: still in Redis (in a
/// shard's due index or stream: work left) or not (work lost), and those whose commit this process was told of but
/// that Redis no longer holds (a commit lost). Read only when keys are unfinished: a verified run never pays for it.
struct Unfinished: Equatable {
    /// Unfinished keys still in Redis whose commit was never confirmed.
    var unprocessed = 0
    /// Keys confirmed as committed to this process that Redis holds neither as processed nor as dead-lettered.
    var lostCommits = 0

    /// Reads the shards' bitmaps (as 32-bit fields, `BITFIELD_RO`), due indexes and streams for keys `0 ..< keys`.
    /// - Parameter confirmed: the words of this process's `ConfirmedCommits`.
    static func read(keys: Int, shards: [ShardKeyspace], connections: [RedisConnection], confirmed: [UInt64]) async throws -> Unfinished {
        var finished = [UInt32](repeating: 0, count: (keys + 31) / 32)
        var present: [Int] = []
        for (shard, connection) in zip(shards, connections) {
            for bitmap in [shard.processed, shard.deadBits] {
                let words = try await fields(of: bitmap, count: finished.count, on: connection)
                for (index, word) in words.enumerated() { finished[index] |= word }
            }
            present += try await indices(inDueIndex: shard.dueIndex, on: connection)
            present += try await indices(inStream: shard.stream, on: connection)
        }
        func isFinished(_ key: Int) -> Bool { key >= keys || finished[key >> 5] & (UInt32(1) << UInt32(31 - key & 31)) != 0 }
        func isConfirmed(_ key: Int) -> Bool { key >> 6 < confirmed.count && confirmed[key >> 6] & (UInt64(1) << UInt64(key & 63)) != 0 }
        var result = Unfinished()
        var counted = Set<Int>()
        for key in present where key >= 0 && !isFinished(key) && !isConfirmed(key) && counted.insert(key).inserted {
            result.unprocessed += 1
        }
        for (word, bits) in confirmed.enumerated() where bits != 0 {
            for bit in 0..<64 where bits & (UInt64(1) << UInt64(bit)) != 0 {
                if !isFinished(word << 6 + bit) { result.lostCommits += 1 }
            }
        }
        return result
    }

    /// The bitmap `key` as `count` 32-bit fields, the first key of each in its most significant bit.
    private static func fields(of key: String, count: Int, on connection: RedisConnection) async throws -> [UInt32] {
        let perCommand = 1_000
        var commands: [RedisCommand] = []
        for start in stride(from: 0, to: count, by: perCommand) {
            var arguments = ["BITFIELD_RO", key]
            for field in start..<min(count, start + perCommand) { arguments += ["GET", "u32", "#\(field)"] }
            commands.append(RedisCommand(arguments))
        }
        var words: [UInt32] = []
        words.reserveCapacity(count)
        for reply in try await connection.pipeline(commands) {
            for value in try reply.unwrapped(for: "BITFIELD_RO").array ?? [] {
                guard let word = value.int else { throw RedisError(.protocolViolation, "BITFIELD_RO returned \(value)") }
                words.append(UInt32(truncatingIfNeeded: word))
            }
        }
        return words
    }

    /// The key indices in a due index (its members).
    private static func indices(inDueIndex key: String, on connection: RedisConnection) async throws -> [Int] {
        let members = try await connection.send(RedisCommand("ZRANGE", key, "0", "-1")).unwrapped(for: "ZRANGE").array ?? []
        return members.compactMap { $0.string.flatMap { Int($0) } }
    }

    /// The key indices of every entry of a stream, read in pages.
    private static func indices(inStream key: String, on connection: RedisConnection) async throws -> [Int] {
        var indices: [Int] = []
        var after = "-"
        while true {
            let page = try await connection.send(RedisCommand("XRANGE", key, after, "+", "COUNT", "10000")).unwrapped(for: "XRANGE").array ?? []
            for item in page {
                if let entry = StreamEntry(item) { indices.append(entry.index) }
            }
            guard page.count == 10_000, let last = page.last?.array?.first?.string else { return indices }
            after = "(" + last
        }
    }
}
