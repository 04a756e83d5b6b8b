import RedisClient

/// One entry of the run's stream: an expired key (`k`, its index) and its deadline (`d`).
package struct StreamEntry: Sendable, Equatable {
    package let id: String
    package let index: Int
    /// The key's deadline, in milliseconds of the server's clock.
    package let deadline: Int64

    package init(id: String, index: Int, deadline: Int64) {
        self.id = id
        self.index = index
        self.deadline = deadline
    }

    /// Parses one `[id, [field, value, ...]]` element of an XREADGROUP or XAUTOCLAIM reply; nil for an entry
    /// that was deleted meanwhile (its fields come back nil) or is not one of ours.
    package init?(_ value: RESPValue) {
        guard let pair = value.array, pair.count == 2, let id = pair[0].string, let fields = pair[1].array else { return nil }
        var index: Int?
        var deadline: Int64?
        var i = 0
        while i + 1 < fields.count {
            switch fields[i].string {
            case "k": index = fields[i + 1].int.map(Int.init)
            case "d": deadline = fields[i + 1].int
            default: break
            }
            i += 2
        }
        guard let index, let deadline else { return nil }
        self.init(id: id, index: index, deadline: deadline)
    }

    /// The entries of an XREADGROUP reply (`[[stream, [entry...]]]`, or nil when the block timed out).
    package static func fromReadGroup(_ reply: RESPValue) -> [StreamEntry] {
        guard let streams = reply.array else { return [] }
        var entries: [StreamEntry] = []
        for stream in streams {
            guard let pair = stream.array, pair.count == 2, let items = pair[1].array else { continue }
            entries.reserveCapacity(entries.count + items.count)
            for item in items { if let entry = StreamEntry(item) { entries.append(entry) } }
        }
        return entries
    }

    /// The entries of an XAUTOCLAIM reply (`[cursor, [entry...], [deleted ids]]`) and the next cursor.
    package static func fromAutoClaim(_ reply: RESPValue) -> (entries: [StreamEntry], cursor: String) {
        guard let parts = reply.array, parts.count >= 2, let cursor = parts[0].string, let items = parts[1].array else { return ([], "0-0") }
        return (items.compactMap(StreamEntry.init), cursor)
    }
}
