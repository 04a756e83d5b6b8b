import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// The private `redis-server` that `--redis spawn` (and every test here) relies on: started on a free loopback
/// port in a temporary directory, and stopped cleanly.
@Suite(.serialized)
struct EmbeddedRedisTests {
    @Test func startServesAFreeLoopbackPortInItsOwnDirectory() async throws {
        let server = try await EmbeddedRedis.start(extraArguments: ["--maxmemory", "64mb"])
        let directory = server.directory
        #expect(FileManager.default.fileExists(atPath: directory.path))
        #expect(server.endpoint == RedisEndpoint(address: .tcp(host: "127.0.0.1", port: server.port)))
        let connection = try await connect(server)
        #expect(try await connection.send("PING") == .status("PONG"))
        let maxmemory = try await connection.send("CONFIG", "GET", "maxmemory")
        #expect(maxmemory == .array([.bulk("maxmemory"), .bulk("67108864")]), "extra arguments were not passed on")
        let save = try await connection.send("CONFIG", "GET", "save").array?.last?.string
        #expect(save == "", "a private server must not persist anything")
        #expect(try await connection.send("CONFIG", "GET", "dir").array?.last?.string?.hasSuffix(directory.lastPathComponent) == true)
        connection.close()

        await stopOffThePool(server)
        #expect(!FileManager.default.fileExists(atPath: directory.path), "stop() should remove the server's directory")
        let error = await #expect(throws: RedisError.self) {
            try await RedisConnection.connect(to: server.endpoint, name: "itest", timeout: .seconds(1)).close()
        }
        #expect(error?.code == .io)
    }

    /// `stop()` sends SIGTERM and waits up to 5 s before SIGKILL. A server that shuts down on SIGTERM is gone in
    /// milliseconds and says so in its log; one that waits the full 5 s and gets killed did not receive it.
    @Test func stopShutsTheServerDownGracefullyAndPromptly() async throws {
        let server = try await EmbeddedRedis.start()
        let directory = server.directory
        defer { try? FileManager.default.removeItem(at: directory) }
        #if os(Linux)
        // A blocked SIGTERM in the server's signal mask (inherited from the thread that spawned it) makes
        // terminate() a no-op.
        let status = (try? String(contentsOfFile: "/proc/\(server.process.pid)/status", encoding: .utf8)) ?? ""
        if let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigBlk:") }),
           let mask = UInt64(line.dropFirst("SigBlk:".count).trimmingCharacters(in: .whitespaces), radix: 16) {
            #expect(mask & (1 << (UInt64(SIGTERM) - 1)) == 0, "redis-server starts with SIGTERM blocked (SigBlk \(String(mask, radix: 16)))")
        }
        #endif
        let clock = ContinuousClock()
        let start = clock.now
        await stopOffThePool(server, removeDirectory: false, awaitExit: false)
        let took = clock.now - start
        #expect(!server.process.isRunning, "stop() returned while the server was still running")
        #expect(took < .seconds(3), "stop() took \(took): the server ignored SIGTERM and was killed")
        let log = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
        #expect(log.contains("ready to exit"), "the server did not shut down cleanly; log ends: \(log.suffix(300))")
        // Whatever happened, let the process be reaped before the test ends.
        for _ in 0..<200 where server.process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
    }
}
