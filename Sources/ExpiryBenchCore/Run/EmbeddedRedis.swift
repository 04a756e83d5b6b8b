import Foundation
import Synchronization
import ExpiryPipeline
import RedisClient

/// A private `redis-server` on a free loopback port in a temporary directory, without persistence unless asked.
/// Stopped (and its directory removed) by `stop()`. (The tests' `crash()` and `restart()` are in TestSupport.)
package final class EmbeddedRedis: Sendable {
    package let endpoint: RedisEndpoint
    package let port: Int
    let directory: URL
    package let arguments: [String]
    package let server: String
    package let current: Mutex<ChildProcess>

    private init(server: String, port: Int, arguments: [String], process: ChildProcess, directory: URL, tls: TLSSettings?) {
        self.server = server
        self.port = port
        self.arguments = arguments
        self.current = Mutex(process)
        self.directory = directory
        let password = arguments.firstIndex(of: "--requirepass").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
        self.endpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port), password: password, tls: tls)
    }

    /// The running `redis-server` process.
    package var process: ChildProcess { current.withLock { $0 } }

    /// The environment variable naming the server binary to start instead of `redis-server` from PATH (another
    /// version, or Valkey: `scripts/servers path valkey-9.1.2`).
    package static let serverVariable = "EXPIRY_BENCH_REDIS_SERVER"

    /// The server binary: `$EXPIRY_BENCH_REDIS_SERVER` when set (nil if it is not an executable file), else
    /// `redis-server` from PATH.
    package static func serverPath() -> String? {
        if let chosen = ProcessInfo.processInfo.environment[serverVariable], !chosen.isEmpty {
            return FileManager.default.isExecutableFile(atPath: chosen) ? chosen : nil
        }
        return ChildProcess.onPath("redis-server")
    }

    /// Starts a server and waits until it answers.
    /// - Parameter extraArguments: more `redis-server` options, e.g. `["--requirepass", "x"]` or
    ///   `["--appendonly", "yes", "--appendfsync", "always"]` (later options win).
    /// - Parameter port: the port to listen on; by default a free one the kernel hands out.
    /// - Parameter tls: when given, the server listens on TLS only (`--port 0 --tls-port`; `extraArguments` name its
    ///   certificate files) and `endpoint` reaches it with these settings.
    /// - Parameter binary: the server binary to start; `serverPath()` when nil.
    /// - Parameter diesWithTool: the server is killed by the kernel when this process dies, even by SIGKILL
    ///   (`ChildProcess`'s `diesWithParent`): a run's private server must not outlive it.
    package static func start(extraArguments: [String] = [], port chosenPort: Int? = nil, tls: TLSSettings? = nil, binary: String? = nil,
                              diesWithTool: Bool = false) async throws -> EmbeddedRedis {
        guard let server = binary ?? serverPath() else {
            if let chosen = ProcessInfo.processInfo.environment[serverVariable], !chosen.isEmpty {
                throw RunError(.unavailable, "\(serverVariable) is '\(chosen)', which is not an executable file: give the path of a redis-server or valkey-server (scripts/servers path NAME prints one), or unset it")
            }
            throw RunError(.unavailable, "redis-server is not on PATH: install it (apt-get install redis-server) or pass --redis URL")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("expiry-bench-redis-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var lastError = "it did not start"
        for _ in 0..<5 {
            let port = try chosenPort ?? freePort()
            let listen = tls == nil ? ["--port", String(port)] : ["--port", "0", "--tls-port", String(port)]
            let arguments = listen + ["--bind", "127.0.0.1", "--dir", directory.path, "--save", "",
                             "--appendonly", "no", "--daemonize", "no", "--logfile", directory.appendingPathComponent("redis.log").path] + extraArguments
            let process = try launch(server, arguments, diesWithTool: diesWithTool)
            let embedded = EmbeddedRedis(server: server, port: port, arguments: arguments, process: process, directory: directory, tls: tls)
            if await embedded.waitUntilReady() { return embedded }
            lastError = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8))?
                .split(separator: "\n").last.map(String.init) ?? lastError
            await embedded.stop(removeDirectory: false)
        }
        try? FileManager.default.removeItem(at: directory)
        throw RunError(.unavailable, "could not start a private redis-server: \(lastError)")
    }

    package static func launch(_ server: String, _ arguments: [String], diesWithTool: Bool = false) throws -> ChildProcess {
        try ChildProcess(path: server, arguments: arguments, diesWithParent: diesWithTool)
    }

    package func waitUntilReady() async -> Bool {
        for _ in 0..<100 {
            if !process.isRunning { return false }
            if let connection = try? await RedisConnection.connect(to: endpoint, name: "expiry-bench:probe", timeout: .milliseconds(500)) {
                connection.close()
                return true
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Stops the server cleanly (SIGTERM), waits until it has exited (SIGKILL after 5 s), and removes its directory.
    package func stop(removeDirectory: Bool = true) async {
        let process = self.process
        process.send(SIGTERM)
        if await !process.waitForExit(within: .seconds(5)) {
            process.send(SIGKILL)
            _ = await process.waitForExit(within: .seconds(2))
        }
        if removeDirectory { try? FileManager.default.removeItem(at: directory) }
    }

    /// A loopback port nothing listens on right now (the kernel's choice for port 0).
    package static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RunError(.unavailable, "cannot open a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw RunError(.unavailable, "cannot bind a socket to find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
