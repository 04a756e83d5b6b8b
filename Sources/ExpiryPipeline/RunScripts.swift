import RedisClient

/// The run's scripts, loaded (SCRIPT LOAD) once and called by SHA.
package struct RunScripts: Sendable {
    package let publish: LoadedScript
    package let sweep: LoadedScript
    package let claim: LoadedScript
    package let commit: LoadedScript
    package let settleAndRead: LoadedScript
    package let renewLeases: LoadedScript
    package let footprint: LoadedScript

    /// Loads every script of the protocol on `connection`.
    package static func load(on connection: RedisConnection) async throws -> RunScripts {
        func loaded(_ script: RedisScript) async throws -> LoadedScript {
            LoadedScript(script: script, sha: try await connection.load(script))
        }
        return RunScripts(publish: try await loaded(Scripts.publish), sweep: try await loaded(Scripts.sweep),
                          claim: try await loaded(Scripts.claim), commit: try await loaded(Scripts.commit),
                          settleAndRead: try await loaded(Scripts.settleAndRead), renewLeases: try await loaded(Scripts.renewLeases),
                          footprint: try await loaded(Scripts.footprint))
    }
}
