import RedisClient

/// The run's scripts, loaded (SCRIPT LOAD) once and called by SHA.
public struct RunScripts: Sendable {
    public let publish: LoadedScript
    public let sweep: LoadedScript
    public let claim: LoadedScript
    public let commit: LoadedScript
    public let settleAndRead: LoadedScript
    public let footprint: LoadedScript

    /// Loads every script of the protocol on `connection`.
    public static func load(on connection: RedisConnection) async throws -> RunScripts {
        func loaded(_ script: RedisScript) async throws -> LoadedScript {
            LoadedScript(script: script, sha: try await connection.load(script))
        }
        return RunScripts(publish: try await loaded(Scripts.publish), sweep: try await loaded(Scripts.sweep),
                          claim: try await loaded(Scripts.claim), commit: try await loaded(Scripts.commit),
                          settleAndRead: try await loaded(Scripts.settleAndRead),
                          footprint: try await loaded(Scripts.footprint))
    }
}
