import ExpiryPipeline

/// `expiry-bench capacity`: the highest rate that stays on time, found as the OpenMessaging Benchmark finds it:
/// short runs at a rising rate (×1.5 a step) until one fails, then halving the gap between the last rate that
/// held and the first that did not, until the gap is under `precision` of the rate.
///
/// A step holds when its run verifies exactly-once, its p99 deadline → commit is within the target, the generator
/// was never held back (the backlog did not keep growing) and the keys arrived at 95 % of the rate or more.
package struct CapacitySearch: Sendable {
    /// One run of the search: JSON `steps` [{`rate`, `achieved`, `p50`, `p99`, `ok`}].
    package struct Step: Sendable, Codable, Equatable {
        package var rate: Int
        /// Keys processed per second over the run.
        package var achieved: Double
        package var p50: Double
        package var p99: Double
        package var ok: Bool
        /// Why the step did not hold (nil when it did).
        package var reason: String?

        package init(rate: Int, achieved: Double, p50: Double, p99: Double, ok: Bool, reason: String? = nil) {
            self.rate = rate
            self.achieved = achieved
            self.p50 = p50
            self.p99 = p99
            self.ok = ok
            self.reason = reason
        }
    }

    /// The search's result: JSON {`sustainable_rate`, `p99_target_ms`, `steps`}.
    package struct Result: Sendable, Codable, Equatable {
        /// The highest rate whose step held; 0 when none did.
        package var sustainableRate: Int
        package var p99TargetMs: Double
        package var steps: [Step]
    }

    package var startRate: Int
    /// Stop narrowing once the gap between held and failed is under this share of the held rate.
    package var precision: Double
    /// No rate above this is tried.
    package var maxRate: Int
    package var maxSteps: Int

    package init(startRate: Int = 2000, precision: Double = 0.05, maxRate: Int = 1_000_000, maxSteps: Int = 16) {
        self.startRate = startRate
        self.precision = precision
        self.maxRate = maxRate
        self.maxSteps = maxSteps
    }

    /// Whether a run at `rate` held: verified, p99 within `target`, never held back, and the rate reached.
    package static func judge(rate: Int, report: RunReport, target: Duration) -> Step {
        let latency = report.latencyMs
        var reason: String?
        if report.verdict != .exactlyOnce {
            reason = "verdict \(report.verdict.rawValue)"
        } else if latency.count == 0 || latency.p99 > target.seconds * 1000 {
            reason = "p99 \(Format.milliseconds(latency.p99)) over \(DurationText.format(target))"
        } else if report.generatorWaits > 0 {
            reason = "the backlog kept growing (the generator was held back \(report.generatorWaits) times)"
        } else if report.throughputKeysPerSec < Double(rate) * 0.95 {
            reason = "reached \(Format.count(Int(report.throughputKeysPerSec))) keys/s"
        }
        return Step(rate: rate, achieved: report.throughputKeysPerSec, p50: latency.p50, p99: latency.p99, ok: reason == nil, reason: reason)
    }

    /// Runs the search; `measure` runs one step at a rate, `progress` hears each step as it ends.
    package func run(target: Duration, measure: (Int) async throws -> Step, progress: (Step) -> Void = { _ in }) async throws -> Result {
        var steps: [Step] = []
        var held: Int?
        var failed: Int?
        var rate = max(1, min(startRate, maxRate))
        while steps.count < maxSteps {
            let step = try await measure(rate)
            steps.append(step)
            progress(step)
            if step.ok { held = max(held ?? 0, rate) } else { failed = min(failed ?? Int.max, rate) }
            guard let next = nextRate(held: held, failed: failed) else { break }
            rate = next
        }
        return Result(sustainableRate: held ?? 0, p99TargetMs: target.seconds * 1000, steps: steps)
    }

    /// The next rate to try, or nil when the search is done.
    func nextRate(held: Int?, failed: Int?) -> Int? {
        switch (held, failed) {
        case (let held?, nil):
            // Rising: ×1.5 until a step fails, up to the ceiling.
            if held >= maxRate { return nil }
            return min(maxRate, Int((Double(held) * 1.5).rounded()))
        case (nil, let failed?):
            // Even the first rate failed: halve it, down to a few keys a second.
            let next = failed / 2
            return next >= 10 ? next : nil
        case (let held?, let failed?):
            if Double(failed - held) <= Double(held) * precision { return nil }
            return (held + failed) / 2
        case (nil, nil):
            return startRate
        }
    }
}
