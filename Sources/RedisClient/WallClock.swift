import Foundation

/// Wall-clock time, for run ids and timestamps a user reads. Durations use `ContinuousClock`.
package enum WallClock {
    /// Milliseconds since the Unix epoch.
    package static func milliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }

    /// Microseconds since the Unix epoch.
    package static func microseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())
    }
}
