import Foundation
import ExpiryPipeline
import Synchronization

/// A child process started with `posix_spawn`, with every signal unblocked and at its default disposition.
///
/// Foundation's `Process` passes on the spawning thread's signal mask (Swift's threads block SIGTERM) and the
/// dispositions this tool sets to SIG_IGN for its own SIGINT handling, so a server started through it would
/// ignore SIGTERM. It runs in a process group of its own; stdout and stderr go to /dev/null.
package final class ChildProcess: Sendable {
    package let pid: pid_t
    private let exited = Atomic<Bool>(false)
    /// The thread that started a child meant to die with this process, kept until the child has exited.
    private let spawner: SpawningThread?

    /// Starts `path` with `arguments` and the current environment.
    /// - Parameter diesWithParent: the kernel kills the child when this process dies, however it dies (SIGKILL
    ///   included): it is started through util-linux's `setpriv --pdeathsig KILL` when that is on PATH, else
    ///   plainly (and then outlives a SIGKILL).
    package init(path: String, arguments: [String], diesWithParent: Bool = false) throws {
        if diesWithParent, let setpriv = Self.onPath("setpriv") {
            // The signal comes when the *thread* that started the child ends, not the process: a thread of the
            // cooperative pool may end when idle, so a thread of its own starts it and stays until it exits.
            let spawner = SpawningThread()
            pid = try spawner.spawn { try Self.spawn(setpriv, ["--pdeathsig", "KILL", "--", path] + arguments) }
            self.spawner = spawner
        } else {
            pid = try Self.spawn(path, arguments)
            spawner = nil
        }
    }

    /// An executable file called `name` in a directory of PATH (or /usr/sbin, /usr/bin), or nil.
    package static func onPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/sbin", "/usr/bin"] {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// posix_spawn of `path` with every signal unblocked and at its default, in a process group of its own.
    private static func spawn(_ path: String, _ arguments: [String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        // Its own process group: a Ctrl-C on the terminal reaches this tool (which stops the server itself, after
        // the report), not the server.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, path, &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw RunError(.unavailable, "cannot start \(path): \(String(cString: strerror(status)))")
        }
        return child
    }

    /// True until the process has exited (reaping it when it has).
    package var isRunning: Bool {
        if exited.load(ordering: .acquiring) { return false }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid || (result == -1 && errno == ECHILD) {
            exited.store(true, ordering: .releasing)
            spawner?.release()
            return false
        }
        return true
    }

    /// Sends `signal` to the process if it still runs.
    package func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Polls (without blocking a thread) until the process has exited; false if it still runs after `limit`.
    package func waitForExit(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while isRunning {
            if ContinuousClock.now > deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}

/// A thread that starts one child process and then waits, so that the child's parent thread (which
/// `PR_SET_PDEATHSIG` watches) lives until `release()` says the child has exited, or the process ends.
private final class SpawningThread: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)
    private let result = Mutex<Result<pid_t, any Error>?>(nil)

    /// Runs `start` on the new thread and returns its result. Blocks the caller for as long as a posix_spawn takes.
    func spawn(_ start: @escaping @Sendable () throws -> pid_t) throws -> pid_t {
        let thread = Thread { [self] in
            let outcome = Result { try start() }
            result.withLock { $0 = outcome }
            done.signal()
            if case .success = outcome { released.wait() }
        }
        thread.name = "expiry-bench:spawner"
        thread.stackSize = 256 * 1024
        thread.start()
        done.wait()
        return try result.withLock { $0 }!.get()
    }

    /// The child has exited: the thread may end.
    func release() { released.signal() }
}
