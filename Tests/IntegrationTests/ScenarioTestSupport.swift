import Foundation
import Synchronization
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// The fault, preflight, signal and tool scenarios (FaultTests, PreflightTests, SignalAndToolsTests) run one test
/// at a time, across their files: each starts its own redis-server and a run with many busy threads, and the
/// machine has two cores, so two of them at once would make each other's timings meaningless.
@Suite(.serialized) enum Scenarios {}

// MARK: - Library runs, bounded in time

/// What a bounded run ended with: its result (nil if it never returned) and how long it took.
struct BoundedRun: Sendable {
    var result: Result<RunReport, Error>?
    var elapsed: Duration

    /// The report, or a recorded failure (thrown error, or no answer in time).
    func report(sourceLocation: SourceLocation = #_sourceLocation) throws -> RunReport {
        switch result {
        case .success(let report): return report
        case .failure(let error):
            Issue.record("the run threw \(error)", sourceLocation: sourceLocation)
            throw error
        case nil:
            Issue.record("the run did not return within its limit (\(elapsed))", sourceLocation: sourceLocation)
            throw BoundExceeded()
        }
    }
}

struct BoundExceeded: Error {}

/// Runs `run.execute()` without ever waiting longer than `limit` (+ 5 s grace after a stop request): a run that
/// hangs is asked to stop at `limit`, and if it still does not return it is abandoned (and the result is nil),
/// so a hang fails the test instead of hanging the test process.
func executeBounded(_ run: BenchmarkRun, limit: Duration) async -> BoundedRun {
    let box = Shared<Result<RunReport, Error>?>(nil)
    let clock = ContinuousClock()
    let start = clock.now
    let task = Task {
        let result: Result<RunReport, Error>
        do { result = .success(try await run.execute()) } catch { result = .failure(error) }
        box.update { $0 = result }
    }
    var stopRequested = false
    while true {
        if let result = box.value { return BoundedRun(result: result, elapsed: clock.now - start) }
        let elapsed = clock.now - start
        if elapsed > limit, !stopRequested {
            stopRequested = true
            run.stop.request()
        }
        if elapsed > limit + .seconds(5) {
            task.cancel()
            return BoundedRun(result: nil, elapsed: elapsed)
        }
        try? await Task.sleep(for: .milliseconds(20))
    }
}

/// A value shared between tasks and threads, behind a lock.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value { mutex.withLock { $0 } }
    func update<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// The report as JSON text, for failure messages.
func dump(_ report: RunReport) -> String {
    (try? ReportFile.encode(report)).map { String(decoding: $0, as: UTF8.self) } ?? "\(report)"
}

/// BITCOUNT of `key`, or 0 when the server cannot be asked right now.
func bitCount(_ connection: RedisConnection, _ key: String) async -> Int {
    Int((try? await connection.send("BITCOUNT", key).int) ?? 0)
}

/// The ids of the clients named exactly `name` (CLIENT LIST).
func clientIDs(named name: String, on connection: RedisConnection) async throws -> [String] {
    let list = try await connection.send("CLIENT", "LIST").string ?? ""
    return list.split(whereSeparator: \.isNewline).compactMap { line -> String? in
        guard line.contains(" name=\(name) ") else { return nil }
        return line.split(separator: " ").first { $0.hasPrefix("id=") }.map { String($0.dropFirst(3)) }
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; true if it held.
func waitUntil(_ limit: Duration, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

/// A fresh temporary directory with a short path (unix sockets allow about 100 bytes), removed by the caller.
func shortTemporaryDirectory(_ tag: String) throws -> URL {
    let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("eb-\(tag)-\(UUID().uuidString.prefix(6))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

// MARK: - The built binary

/// The URL of `server` over TCP, as a user would type it.
func tcpURL(_ server: EmbeddedRedis) -> String { "redis://127.0.0.1:\(server.port)" }

/// A program's exit status and output, for failure messages.
func describe(_ result: ProgramResult) -> String { "exit \(result.status)\nstdout: \(result.stdout)\nstderr: \(result.stderr)" }

/// Runs the built `expiry-bench` with `arguments` as a user would: stdout and stderr captured in files, the
/// environment inherited except REDIS_PASSWORD and NO_COLOR (which change the tool's behaviour), plus
/// `environment`. Kills it (and fails the test) after `limit`. Fails the test if it crashed.
func runExpiryBench(_ arguments: [String], environment: [String: String] = [:], limit: Duration = .seconds(60),
                    whileRunning: (@Sendable (Process) async -> Void)? = nil) async throws -> ProgramResult {
    let binary = try EndToEndTests.productsDirectory().appendingPathComponent("expiry-bench")
    let result = try await runProgram(binary, arguments, environment: toolEnvironment(environment), limit: limit, whileRunning: whileRunning)
    expectNoCrash(result, arguments)
    return result
}

/// Runs the built `expiry-bench` with its stdout on a pseudo-terminal (stderr in a file), as on a user's
/// terminal; returns what it printed there (the terminal turns "\n" into "\r\n").
func runExpiryBenchOnTerminal(_ arguments: [String], environment: [String: String] = [:],
                              limit: Duration = .seconds(60)) async throws -> ProgramResult {
    let binary = try EndToEndTests.productsDirectory().appendingPathComponent("expiry-bench")
    let (master, slavePath) = try openPseudoTerminal()
    let slave = open(slavePath, O_RDWR | O_NOCTTY)
    try #require(slave >= 0, "cannot open \(slavePath)")
    let slaveHandle = FileHandle(fileDescriptor: slave, closeOnDealloc: true)

    // Drain the terminal on a thread of its own, so that the program never blocks on a full terminal buffer.
    let captured = Shared<(data: Data, done: Bool)>((Data(), false))
    let reader = Thread {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(master, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }  // EIO once every copy of the slave side is closed
            captured.update { $0.data.append(contentsOf: buffer[0..<count]) }
        }
        close(master)
        captured.update { $0.done = true }
    }
    reader.start()

    let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("expiry-bench-tty-\(UUID().uuidString.prefix(8)).stderr")
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errURL) }
    let err = try FileHandle(forWritingTo: errURL)
    defer { try? err.close() }

    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    process.environment = toolEnvironment(environment)
    process.standardOutput = slaveHandle
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    do { try process.run() } catch { try? slaveHandle.close(); throw error }
    try? slaveHandle.close()  // the child holds its own copy; the reader sees EIO once it exits
    try await awaitExit(process, limit: limit, description: "expiry-bench " + arguments.joined(separator: " "), whileRunning: nil)
    _ = await waitUntil(.seconds(5)) { captured.value.done }
    let stdout = String(decoding: captured.value.data, as: UTF8.self)
    let result = ProgramResult(status: process.terminationStatus, exitedNormally: process.terminationReason == .exit,
                               stdout: stdout, stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    expectNoCrash(result, arguments)
    return result
}

/// Opens a pseudo-terminal: its master side's descriptor and its slave side's path. (posix_openpt and friends
/// are not in Swift's Glibc module: they are looked up in the C library at run time.)
private func openPseudoTerminal() throws -> (master: Int32, slavePath: String) {
    typealias OpenPT = @convention(c) (Int32) -> Int32
    typealias PTAction = @convention(c) (Int32) -> Int32
    typealias PTSName = @convention(c) (Int32, UnsafeMutablePointer<CChar>?, Int) -> Int32
    let library = dlopen(nil, RTLD_NOW)
    guard let openSymbol = dlsym(library, "posix_openpt"), let grantSymbol = dlsym(library, "grantpt"),
          let unlockSymbol = dlsym(library, "unlockpt"), let nameSymbol = dlsym(library, "ptsname_r") else {
        throw PseudoTerminalError(reason: "posix_openpt, grantpt, unlockpt or ptsname_r not found")
    }
    let master = unsafeBitCast(openSymbol, to: OpenPT.self)(O_RDWR | O_NOCTTY)
    guard master >= 0 else { throw PseudoTerminalError(reason: "posix_openpt: errno \(errno)") }
    guard unsafeBitCast(grantSymbol, to: PTAction.self)(master) == 0, unsafeBitCast(unlockSymbol, to: PTAction.self)(master) == 0 else {
        close(master)
        throw PseudoTerminalError(reason: "grantpt/unlockpt: errno \(errno)")
    }
    var name = [CChar](repeating: 0, count: 256)
    guard unsafeBitCast(nameSymbol, to: PTSName.self)(master, &name, name.count) == 0 else {
        close(master)
        throw PseudoTerminalError(reason: "ptsname_r: errno \(errno)")
    }
    return (master, String(cString: name))
}

struct PseudoTerminalError: Error, CustomStringConvertible {
    let reason: String
    var description: String { "cannot open a pseudo-terminal: \(reason)" }
}

private func toolEnvironment(_ extra: [String: String]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["REDIS_PASSWORD"] = nil
    environment["NO_COLOR"] = nil
    for (name, value) in extra { environment[name] = value }
    return environment
}

private func expectNoCrash(_ result: ProgramResult, _ arguments: [String]) {
    #expect(result.exitedNormally, "expiry-bench ended by a signal; stderr: \(result.stderr)")
    for marker in ["Fatal error", "Stack dump", "Program crashed", "Backtrace", "SIGSEGV", "SIGILL"] {
        #expect(!result.combined.contains(marker), "'\(marker)' in the output of expiry-bench \(arguments.joined(separator: " ")): \(result.combined)")
    }
}

/// The JSON report at `path`, as a dictionary.
func readJSONReport(_ path: String) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// A path in the temporary directory for an output file of the tool.
func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("expiry-bench-\(UUID().uuidString.prefix(8))-\(name)").path
}
