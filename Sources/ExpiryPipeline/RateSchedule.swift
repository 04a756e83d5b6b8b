
/// The generator's pace over a run: one rate held until every key is written, or stages
/// (`--rate 2000:10s,8000:10s,12000:10s`, k6's ramping arrival rate in steps), each a rate held for a duration.
///
/// Open loop: key number `i` of the run is due at `offset(ofKey: i)` after the start, whatever happened before
/// it. The stages decide the run's key count (the sum of rate × duration).
package struct RateSchedule: Sendable, Equatable {
    /// One stage: `rate` keys/s for `duration`.
    package struct Stage: Sendable, Equatable, CustomStringConvertible {
        package var rate: Int
        package var duration: Duration

        package init(rate: Int, duration: Duration) {
            self.rate = rate
            self.duration = duration
        }

        /// Keys the stage generates.
        package var keys: Int { Int((Double(rate) * duration.seconds).rounded()) }
        package var description: String { "\(rate):\(DurationText.format(duration))" }
    }

    package let stages: [Stage]
    /// The first key of each stage, and one past the last key.
    private let firstKeys: [Int]
    /// When each stage starts, in seconds after the start.
    private let starts: [Double]

    package init(stages: [Stage]) {
        self.stages = stages
        var first = 0
        var start = 0.0
        var firstKeys: [Int] = []
        var starts: [Double] = []
        for stage in stages {
            firstKeys.append(first)
            starts.append(start)
            first += stage.keys
            start += stage.duration.seconds
        }
        firstKeys.append(first)
        starts.append(start)
        self.firstKeys = firstKeys
        self.starts = starts
    }

    /// One rate for `keys` keys.
    package init(rate: Int, keys: Int) {
        self.init(stages: [Stage(rate: rate, duration: .nanoseconds(Int64(Double(keys) / Double(max(1, rate)) * 1e9)))])
    }

    /// Every key of every stage.
    package var keys: Int { firstKeys.last ?? 0 }
    /// From the first key to the last stage's end, in seconds.
    package var seconds: Double { starts.last ?? 0 }

    /// The stage that generates key `position` (the last one past the end).
    package func stage(ofKey position: Int) -> Int {
        var index = 0
        while index + 1 < stages.count, position >= firstKeys[index + 1] { index += 1 }
        return index
    }

    /// The stage under way `elapsed` seconds after the start (the last one past the end).
    package func stage(at elapsed: Double) -> Int {
        var index = 0
        while index + 1 < stages.count, elapsed >= starts[index + 1] { index += 1 }
        return index
    }

    /// When stage `index` starts, in seconds after the start.
    package func start(of index: Int) -> Double { starts[index] }

    /// When key `position` (of all the run's keys, counted from 0; fractional for a shard's share) is due, in
    /// seconds after the start.
    package func offset(ofKey position: Double) -> Double {
        let index = stage(ofKey: Int(position))
        let stage = stages[index]
        return starts[index] + (position - Double(firstKeys[index])) / Double(max(1, stage.rate))
    }

    /// The rate of the stage under way when key `position` is written.
    package func rate(atKey position: Int) -> Int { stages[stage(ofKey: position)].rate }

    /// Reads `--rate`: a number of keys/s (one rate: no stages), or stages `rate:duration,...`.
    /// - Returns: the single rate (0: as fast as possible) or, for stages, the highest stage rate; and the stages.
    package static func parse(_ text: String) throws(RateScheduleError) -> (rate: Int, stages: [Stage]) {
        let trimmed = text.filter { !$0.isWhitespace }
        if let rate = Int(trimmed) { return (rate, []) }
        var stages: [Stage] = []
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            guard pieces.count == 2, let rate = Int(pieces[0]), rate > 0, let duration = DurationText.parse(String(pieces[1])), duration > .zero else {
                throw RateScheduleError("--rate '\(text)': '\(part)' is not a stage; give keys/s (10000), or stages of keys/s:duration separated by commas (1000:30s,5000:30s,10000:1m)")
            }
            stages.append(Stage(rate: rate, duration: duration))
        }
        return (stages.map(\.rate).max() ?? 0, stages)
    }
}

/// A `--rate` that cannot be read.
package struct RateScheduleError: Error, Sendable, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
