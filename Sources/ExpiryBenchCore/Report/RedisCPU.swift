import ExpiryPipeline

/// What the run cost the server: the CPU Redis used (INFO cpu, `used_cpu_user` + `used_cpu_sys`, every primary)
/// from before the run wrote anything to after its end was verified, per key finished and as a share of one core
/// over the run. It is the pattern's weight as this tool drives it, set-up and verification included; nil figures
/// when a reading failed, or nothing was finished.
package struct RedisCPU: Sendable, Equatable {
    /// Microseconds of Redis CPU per key finished (committed or dead-lettered).
    package var microsecondsPerKey: Double?
    /// Redis CPU over the run's duration: 1 is one core busy the whole time.
    package var share: Double?

    package init(microsecondsPerKey: Double?, share: Double?) {
        (self.microsecondsPerKey, self.share) = (microsecondsPerKey, share)
    }

    /// From the CPU seconds read at the start and at the end, the keys finished and the run's duration (seconds).
    package init(start: Double?, end: Double?, keys: Int, duration: Double) {
        guard let start, let end, end >= start else {
            self.init(microsecondsPerKey: nil, share: nil)
            return
        }
        let used = end - start
        self.init(microsecondsPerKey: keys > 0 ? (used * 1_000_000 / Double(keys) * 10).rounded() / 10 : nil,
                  share: duration > 0 ? (used / duration * 1000).rounded() / 1000 : nil)
    }

    /// The report's line: "X µs per key (Y % of one core at the achieved rate)", or why it is unknown.
    package var line: String {
        guard let microsecondsPerKey else { return "unknown (INFO cpu could not be read on every primary, or no key was finished)" }
        let core = share.map { String(format: " (%.0f %% of one core at the achieved rate)", $0 * 100) } ?? ""
        return String(format: "%.1f µs per key", microsecondsPerKey) + core
    }
}
