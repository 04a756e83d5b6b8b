import Foundation
import ExpiryPipeline

/// The process's limits that a run with many consumers can meet.
package enum ResourceLimits {
    /// Makes sure `needed` file descriptors can be open at once: raises the soft limit up to the hard one if it
    /// must, and refuses with the numbers when even the hard limit is too low (each consumer holds a socket).
    package static func ensureOpenFiles(_ needed: Int, consumers: Int) throws {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur >= rlim_t(needed) { return }
        if limit.rlim_max >= rlim_t(needed) {
            limit.rlim_cur = rlim_t(needed)
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 { return }
        }
        throw RunError(.usage, "--consumers \(consumers) needs about \(needed) open files (one connection each), but this process may open only \(limit.rlim_max) (ulimit -n): raise the limit or use fewer consumers")
    }
}
