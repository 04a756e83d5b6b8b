import Foundation
import ExpiryBenchCore

/// Faults the tests cause on their private server; the product never crashes a server, so these live here.
extension EmbeddedRedis {
    /// Kills the server at once (SIGKILL), as a crash would, and waits until it is gone. Its data stays.
    public func crash() async {
        let process = self.process
        process.send(SIGKILL)
        _ = await process.waitForExit(within: .seconds(5))
    }

    /// Starts the server again on the same port, directory and options (after `crash()`), and waits until it answers.
    public func restart() async throws {
        let process = try Self.launch(server, arguments)
        current.withLock { $0 = process }
        guard await waitUntilReady() else { throw RunError(.unavailable, "the private redis-server did not restart") }
    }
}
