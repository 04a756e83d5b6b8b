import Synchronization
import ExpiryPipeline
import RedisClient

/// What to undo if the process must quit at once (a second SIGINT): put the server setting back and remove the
/// run's keys, as far as a short time allows. A run registers it once it has changed something, and clears it
/// once its own cleanup is done.
package final class EmergencyCleanup: Sendable {
    package static let shared = EmergencyCleanup()
    private let action = Mutex<(runID: String, remedy: String, body: @Sendable () async -> Void)?>(nil)

    /// - Parameter remedy: the command that removes what may remain (`cleanupCommand`, naming the server).
    package func register(runID: String, remedy: String, _ body: @escaping @Sendable () async -> Void) { action.withLock { $0 = (runID, remedy, body) } }
    package func clear() { action.withLock { $0 = nil } }

    /// The run the registered cleanup belongs to, if any.
    package var runID: String? { action.withLock { $0?.runID } }

    /// The command that removes what the registered run may leave, naming its server.
    package var remedy: String? { action.withLock { $0?.remedy } }

    /// Runs the registered cleanup, if any, giving up after `limit`.
    package func run(limit: Duration) async {
        guard let body = action.withLock({ $0?.body }) else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await body() }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }

    /// The usual undo for a run: a fresh connection restores `notify-keyspace-events` and removes the run's keys.
    static func undo(endpoint: RedisEndpoint, keyspace: RunKeyspace, notifications: NotificationSettings, keep: Bool) -> @Sendable () async -> Void {
        return {
            guard let connection = try? await RedisConnection.connect(to: endpoint, name: "expiry-bench:\(keyspace.runID):cleanup", timeout: .seconds(1)) else { return }
            defer { connection.close() }
            _ = try? await notifications.release(on: connection)
            if !keep {
                let gates = (try? await RunCleanup.gates(of: keyspace, on: connection)) ?? [keyspace.meta]
                _ = try? await RunCleanup.removeKeys(of: keyspace, on: connection, gates: gates)
            }
        }
    }
}
