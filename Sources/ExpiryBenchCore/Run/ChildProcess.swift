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

    /// Starts `path` with `arguments` and the current environment.
    package init(path: String, arguments: [String]) throws {
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
        pid = child
    }

    /// True until the process has exited (reaping it when it has).
    package var isRunning: Bool {
        if exited.load(ordering: .acquiring) { return false }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid || (result == -1 && errno == ECHILD) {
            exited.store(true, ordering: .releasing)
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
