import Foundation

/// A private `redis-server` on a free loopback port in a temporary directory, without persistence.
/// Stopped (and its directory removed) by `stop()`.
public final class EmbeddedRedis: Sendable {
    public let endpoint: RedisEndpoint
    public let port: Int
    let process: Process
    let directory: URL

    private init(port: Int, process: Process, directory: URL) {
        self.port = port
        self.endpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port))
        self.process = process
        self.directory = directory
    }

    /// The path of `redis-server`, if it is on PATH.
    public static func serverPath() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/sbin", "/usr/bin"] {
            let candidate = "\(dir)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Starts a server and waits until it answers PING.
    /// - Parameter extraArguments: more `redis-server` options, e.g. `["--requirepass", "x"]`.
    public static func start(extraArguments: [String] = []) async throws -> EmbeddedRedis {
        guard let server = serverPath() else {
            throw RunError(.unavailable, "redis-server is not on PATH: install it (apt-get install redis-server) or pass --redis URL")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("expiry-bench-redis-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var lastError = "it did not start"
        for _ in 0..<5 {
            let port = try freePort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: server)
            process.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--dir", directory.path, "--save", "",
                                 "--appendonly", "no", "--daemonize", "no", "--logfile", directory.appendingPathComponent("redis.log").path] + extraArguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let embedded = EmbeddedRedis(port: port, process: process, directory: directory)
            if await embedded.waitUntilReady() { return embedded }
            lastError = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8))?
                .split(separator: "\n").last.map(String.init) ?? lastError
            embedded.stop(removeDirectory: false)
        }
        try? FileManager.default.removeItem(at: directory)
        throw RunError(.unavailable, "could not start a private redis-server: \(lastError)")
    }

    func waitUntilReady() async -> Bool {
        for _ in 0..<100 {
            if !process.isRunning { return false }
            if let connection = try? await RedisConnection.connect(to: endpoint, name: "expiry-bench:probe", timeout: .milliseconds(500)) {
                defer { connection.close() }
                if let reply = try? await connection.send("PING"), reply.string == "PONG" { return true }
                // A server with --requirepass answers NOAUTH: it is up.
                return true
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Stops the server and removes its directory.
    public func stop(removeDirectory: Bool = true) {
        if process.isRunning {
            process.terminate()
            // Not waitUntilExit(): on Linux it spins a run loop at full CPU when called off the main thread.
            for _ in 0..<500 where process.isRunning { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        if removeDirectory { try? FileManager.default.removeItem(at: directory) }
    }

    /// A loopback port nothing listens on right now (the kernel's choice for port 0).
    public static func freePort() throws -> Int {
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
