/// What the pipeline's components know of the run's configuration: derived once from it by the run
/// (`RunConfiguration.pipelineSettings`), or from the settings a driver shares with consumer processes.
package struct PipelineSettings: Sendable {
    /// Keys of the run, and consumers of this process.
    package var keys: Int
    package var consumers: Int
    package var ttl: Duration
    package var work: Duration
    package var lockTTL: Duration
    /// Entries per XREADGROUP, and keys of a batch in their work at once.
    package var batch: Int
    package var concurrency: Int
    package var commitEvery: Duration
    package var failRate: Double
    package var maxDeliveries: Int
    /// Keys per second (0: as fast as the pipeline takes them), or the stages of the rate.
    package var rate: Int
    package var stages: [RateSchedule.Stage]
    /// Keys generated but not committed, at most, before the generator waits.
    package var maxOutstanding: Int
    package var grace: Duration
    package var rescueAfter: Duration
    package var sweepInterval: Duration
    package var probeWindow: Duration
    /// How long one call to Redis may take before it counts as failed.
    package var timeout: Duration
    /// Called with every batch of committed keys' latencies (µs), for `--metrics-port`.
    package var observeLatencies: (@Sendable ([Int64]) -> Void)?

    package init(keys: Int, consumers: Int, ttl: Duration, work: Duration, lockTTL: Duration, batch: Int, concurrency: Int,
                 commitEvery: Duration, failRate: Double, maxDeliveries: Int, rate: Int, stages: [RateSchedule.Stage], maxOutstanding: Int,
                 grace: Duration, rescueAfter: Duration, sweepInterval: Duration, probeWindow: Duration, timeout: Duration,
                 observeLatencies: (@Sendable ([Int64]) -> Void)? = nil) {
        self.keys = keys
        self.consumers = consumers
        self.ttl = ttl
        self.work = work
        self.lockTTL = lockTTL
        self.batch = batch
        self.concurrency = concurrency
        self.commitEvery = commitEvery
        self.failRate = failRate
        self.maxDeliveries = maxDeliveries
        self.rate = rate
        self.stages = stages
        self.maxOutstanding = maxOutstanding
        self.grace = grace
        self.rescueAfter = rescueAfter
        self.sweepInterval = sweepInterval
        self.probeWindow = probeWindow
        self.timeout = timeout
        self.observeLatencies = observeLatencies
    }

    /// The generator's pace: the stages, or one rate for every key; nil for as fast as the pipeline takes them.
    package var schedule: RateSchedule? {
        if !stages.isEmpty { return RateSchedule(stages: stages) }
        return rate > 0 ? RateSchedule(rate: rate, keys: keys) : nil
    }

    /// An entry idle this long is reclaimed from its consumer: by then its lock has certainly lapsed.
    package var reclaimIdle: Duration { lockTTL * 2 }

    /// A consumer's lease lasts this long without a heartbeat; heartbeats come every quarter of it, so three
    /// heartbeats in a row must be late (a loaded machine) before a live consumer is taken for dead.
    package var leaseTTL: Duration { max(.seconds(2), lockTTL * 2) }
}
