import ExpiryPipeline
import RedisClient

/// The server a run talks to: the one at `--redis`, or a private one started for the run.
struct ServerHandle: Sendable {
    let endpoint: RedisEndpoint
    let control: RedisConnection
    let embedded: EmbeddedRedis?

    /// Connects to the configured server; spawns a private one when asked to, or when nothing listens at the
    /// default address and `redis-server` is on PATH (saying so in one line).
    static func open(_ server: RunConfiguration.Server, timeout: Duration, say: @Sendable (String) -> Void) async throws -> ServerHandle {
        switch server {
        case .spawn:
            return try await spawn(timeout: timeout)
        case .url(let endpoint, let spawnIfAbsent):
            do {
                let control = try await RedisConnection.connect(to: endpoint, name: "expiry-bench:control", timeout: timeout)
                return ServerHandle(endpoint: endpoint, control: control, embedded: nil)
            } catch let error as RedisError {
                if spawnIfAbsent, error.code == .io, EmbeddedRedis.serverPath() != nil {
                    let handle = try await spawn(timeout: timeout)
                    say("Nothing listens at \(endpoint.addressDescription): started a private redis-server on \(handle.endpoint.addressDescription) for this run (stopped at exit; --redis URL to use yours).")
                    return handle
                }
                throw RunError(error, endpoint: endpoint)
            }
        }
    }

    private static func spawn(timeout: Duration) async throws -> ServerHandle {
        let embedded = try await EmbeddedRedis.start(diesWithTool: true)
        do {
            let control = try await RedisConnection.connect(to: embedded.endpoint, name: "expiry-bench:control", timeout: timeout)
            return ServerHandle(endpoint: embedded.endpoint, control: control, embedded: embedded)
        } catch {
            await embedded.stop()
            throw error
        }
    }
}
