/// A Lua script, loaded once with SCRIPT LOAD and called by its SHA1 with EVALSHA.
///
/// If the server forgot it (restart, SCRIPT FLUSH), the call loads it again and retries once.
package struct RedisScript: Sendable {
    package let name: String
    package let source: String

    package init(name: String, source: String) {
        self.name = name
        self.source = source
    }
}

extension RedisConnection {
    /// Loads `script` and returns its SHA1.
    package func load(_ script: RedisScript) async throws -> String {
        let reply = try await send(RedisCommand("SCRIPT", "LOAD", script.source))
        guard let sha = reply.string else { throw RedisError(.protocolViolation, "SCRIPT LOAD \(script.name) returned \(reply)") }
        return sha
    }

    /// Runs a loaded script: `EVALSHA sha numkeys keys... args...`, built by `arguments` on a reused builder.
    /// Reloads and retries once on NOSCRIPT. A server error reply throws.
    package func evalsha(_ script: LoadedScript, keys: [String], arguments: (inout RedisCommandBuilder) -> Void) async throws -> RESPValue {
        var builder = RedisCommandBuilder("EVALSHA", capacity: 1024)
        builder.append(script.sha)
        builder.append(keys.count)
        for key in keys { builder.append(key) }
        arguments(&builder)
        let command = builder.build()
        let reply = try await pipeline([command])[0]
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            _ = try await load(script.script)
            return try await pipeline([command])[0].unwrapped(for: "script \(script.script.name)")
        }
        return try reply.unwrapped(for: "script \(script.script.name)")
    }
}

/// A script together with the SHA1 the server gave it.
package struct LoadedScript: Sendable {
    package let script: RedisScript
    package let sha: String

    package init(script: RedisScript, sha: String) {
        self.script = script
        self.sha = sha
    }
}
