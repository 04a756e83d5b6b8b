/// The server's clock as seen from here.
package enum ServerClock {
    /// Server time minus local wall time, in milliseconds, from the TIME sample with the shortest round trip
    /// (its error is at most half that round trip).
    package static func offsetMilliseconds(_ connection: RedisConnection, samples: Int = 5) async throws -> Int64 {
        var best: (roundTrip: Int64, offset: Int64)?
        for _ in 0..<samples {
            let before = WallClock.microseconds()
            let reply = try await connection.send("TIME")
            let after = WallClock.microseconds()
            guard let parts = reply.array, parts.count == 2, let seconds = parts[0].int, let micros = parts[1].int else {
                throw RedisError(.protocolViolation, "TIME returned \(reply)")
            }
            let server = seconds * 1_000_000 + micros
            let sample = (roundTrip: after - before, offset: server - (before + after) / 2)
            if sample.roundTrip < best?.roundTrip ?? .max { best = sample }
        }
        return (best?.offset ?? 0) / 1000
    }

    /// The server's clock now, in milliseconds (one TIME).
    package static func nowMilliseconds(_ connection: RedisConnection) async throws -> Int64 {
        let reply = try await connection.send("TIME")
        guard let milliseconds = milliseconds(fromTime: reply) else { throw RedisError(.protocolViolation, "TIME returned \(reply)") }
        return milliseconds
    }

    /// A TIME reply (seconds, microseconds) in milliseconds; nil for anything else.
    package static func milliseconds(fromTime reply: RESPValue) -> Int64? {
        guard let parts = reply.array, parts.count == 2, let seconds = parts[0].int, let micros = parts[1].int else { return nil }
        return seconds * 1000 + micros / 1000
    }
}
