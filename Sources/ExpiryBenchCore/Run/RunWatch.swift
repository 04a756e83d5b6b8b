import ExpiryPipeline
import RedisClient

/// How the watch ended a run: complete, or why not.
struct RunEnding {
    var end: ContinuousClock.Instant
    var interrupted = false
    var stalledFor: Duration?
    var overTime = false
    var abort: ThresholdWatch.Abort?
}

/// A run stalls when neither its finished nor its generated keys move for longer than `timeout`; keys still
/// inside their TTL are not a stall, so it waits `ttl` for them first.
struct StallWatch {
    let ttl: Duration
    let timeout: Duration
    private var lastProgress: ContinuousClock.Instant
    private var lastFinished = 0
    private var lastGenerated = 0

    init(ttl: Duration, timeout: Duration, start: ContinuousClock.Instant) {
        self.ttl = ttl
        self.timeout = timeout
        self.lastProgress = start
    }

    /// How long the run has made no progress, once that is a stall; nil while it is not.
    mutating func stalledFor(at now: ContinuousClock.Instant, finished: Int, generated: Int) -> Duration? {
        if finished != lastFinished || generated != lastGenerated {
            lastProgress = now
            lastFinished = finished
            lastGenerated = generated
        }
        return now - (lastProgress + ttl) > timeout ? now - lastProgress : nil
    }
}

/// The driver's heartbeat for consumer processes, once a second, which also renews the run-level keys' safety
/// TTL (the shards' keys get theirs from `StreamTrimmer`).
struct DriverHeartbeat {
    let keyspace: RunKeyspace
    let keep: Bool
    let control: RedisConnection
    let context: PipelineContext

    func run(shouldStop: @Sendable () -> Bool) async {
        while !shouldStop() {
            await beat()
            for _ in 0..<20 where !shouldStop() { try? await Task.sleep(for: .milliseconds(50)) }
        }
    }

    private func beat() async {
        var commands = [RedisCommand("HSET", keyspace.meta, "driver_ms", String(context.serverNowMilliseconds))]
        if !keep { commands += keyspace.runBookkeepingKeys.map { RedisCommand("PEXPIRE", $0, "3600000") } }
        _ = try? await control.pipeline(commands)
    }
}
