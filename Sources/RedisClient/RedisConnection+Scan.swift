extension RedisConnection {
    /// Walks the keys of this connection's server that match `pattern` (SCAN MATCH, `count` a call), a page at a
    /// time: `page` gets each page's keys and returns false to stop early. A key may be seen twice (SCAN's own
    /// guarantee), and keys written meanwhile may be missed.
    package func scan(matching pattern: String, count: Int = 1000, _ page: ([String]) async throws -> Bool) async throws {
        var cursor = "0"
        repeat {
            let reply = try await send(RedisCommand(["SCAN", cursor, "MATCH", pattern, "COUNT", String(count)]))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                throw RedisError(.protocolViolation, "SCAN returned \(reply)")
            }
            cursor = next
            guard try await page(keys.compactMap(\.string)) else { return }
        } while cursor != "0"
    }

    /// `text` with glob characters escaped, so that in a SCAN MATCH pattern it matches only itself.
    package static func globEscaped(_ text: String) -> String {
        var out = ""
        for ch in text {
            if "*?[]\\".contains(ch) { out.append("\\") }
            out.append(ch)
        }
        return out
    }
}
