import Foundation
import Synchronization
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// Starts a private `redis-server` (free loopback port, temporary directory, no persistence), runs `body` with it,
/// and always stops it afterwards, whether `body` returned or threw.
func withRedis<T: Sendable>(
    extraArguments: [String] = [], tls: TLSSettings? = nil,
    _ body: (EmbeddedRedis) async throws -> T
) async throws -> T {
    let server = try await EmbeddedRedis.start(extraArguments: extraArguments, tls: tls)
    let result: Result<T, Error>
    do { result = .success(try await body(server)) } catch { result = .failure(error) }
    await stopOffThePool(server)
    return try result.get()
}

/// Stops `server` (SHUTDOWN NOSAVE, then waits for the process to exit, without blocking a thread).
func stopOffThePool(_ server: EmbeddedRedis, removeDirectory: Bool = true, awaitExit: Bool = true) async {
    await server.stop(removeDirectory: removeDirectory)
}

/// A connection to `server` named after the test, closed by the caller (or at deinit).
func connect(_ server: EmbeddedRedis, name: String = "itest", timeout: Duration = .seconds(5)) async throws -> RedisConnection {
    try await RedisConnection.connect(to: server.endpoint, name: name, timeout: timeout)
}

/// An endpoint for `server` carrying a password.
func endpoint(_ server: EmbeddedRedis, username: String? = nil, password: String?) -> RedisEndpoint {
    RedisEndpoint(address: .tcp(host: "127.0.0.1", port: server.port), username: username, password: password)
}

/// Every key matching the glob `pattern`, collected with SCAN (never KEYS).
func scanKeys(_ connection: RedisConnection, match pattern: String) async throws -> [String] {
    var found: [String] = []
    try await connection.scan(matching: pattern) { keys in
        found += keys
        return true
    }
    return found
}

/// `master` or `slave`, as the server's ROLE says.
func role(of server: EmbeddedRedis) async throws -> String? {
    let connection = try await connect(server, name: "itest:role")
    defer { connection.close() }
    return try await connection.send("ROLE").array?.first?.string
}

/// Whether the server holds a key matching `pattern`.
func hasKeys(_ server: EmbeddedRedis, match pattern: String) async throws -> Bool {
    let connection = try await connect(server, name: "itest:scan")
    defer { connection.close() }
    return try await !scanKeys(connection, match: pattern).isEmpty
}

/// The current value of `notify-keyspace-events`, as the server reports it.
func notifyKeyspaceEvents(_ connection: RedisConnection) async throws -> String {
    let reply = try await connection.send("CONFIG", "GET", "notify-keyspace-events")
    let pair = try #require(reply.array)
    try #require(pair.count == 2)
    return try #require(pair[1].string)
}

/// Collects what a run says, for assertions.
final class LineBuffer: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    var say: @Sendable (String) -> Void { { [self] line in lines.withLock { $0.append(line) } } }
}

/// Result of running a program to completion.
struct ProgramResult: Sendable {
    var status: Int32
    var exitedNormally: Bool
    var stdout: String
    var stderr: String
    var combined: String { stdout + "\n" + stderr }
}

/// Runs `executable` with `arguments`, stdout and stderr captured in files (no pipe can fill and stall it),
/// and waits for it without blocking a cooperative thread. Kills it (and fails the test) after `limit`.
/// - Parameter environment: the child's whole environment; nil to inherit this process's.
func runProgram(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil, limit: Duration = .seconds(90),
                whileRunning: (@Sendable (Process) async -> Void)? = nil) async throws -> ProgramResult {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("expiry-bench-e2e-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let outURL = directory.appendingPathComponent("stdout")
    let errURL = directory.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    defer { try? out.close(); try? err.close() }

    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    try await awaitExit(process, limit: limit, description: "\(executable.lastPathComponent) \(arguments.joined(separator: " "))",
                        whileRunning: whileRunning)
    let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return ProgramResult(status: process.terminationStatus, exitedNormally: process.terminationReason == .exit,
                         stdout: stdout, stderr: stderr)
}

/// Waits (without blocking a thread) for `process` to exit; kills it and fails the test after `limit`.
func awaitExit(_ process: Process, limit: Duration, description: String,
               whileRunning: (@Sendable (Process) async -> Void)?) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    if let whileRunning { await whileRunning(process) }
    // Not waitUntilExit(): on Linux it spins a run loop when called off the main thread.
    while process.isRunning {
        if clock.now > deadline {
            process.terminate()
            try await Task.sleep(for: .milliseconds(500))
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            Issue.record("\(description) did not finish within \(limit)")
            break
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
}

/// A short run's configuration against `server`, bounded so that a broken run fails instead of hanging.
func testRunConfiguration(_ server: EmbeddedRedis, keys: Int, consumers: Int, work: Duration = .milliseconds(1),
                          namespace: String, runID: String, keep: Bool = false) -> RunConfiguration {
    var configuration = RunConfiguration()
    configuration.server = .url(server.endpoint, spawnIfAbsent: false)
    configuration.keys = keys
    configuration.consumers = consumers
    configuration.ttl = .milliseconds(100)
    configuration.work = work
    configuration.progress = .none
    configuration.namespace = namespace
    configuration.runID = runID
    configuration.keep = keep
    return configuration
}
