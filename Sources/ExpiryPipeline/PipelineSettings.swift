import RedisClient

/// What the pipeline's components know of the run's configuration: one settings value per component, derived
/// once from the run's configuration (`RunConfiguration.pipelineSettings`). A consumer process takes its
/// consumers' settings from its driver instead (`ConsumerSettings`, JSON in the run's meta hash).
package struct PipelineSettings: Sendable {
    package var generator: GeneratorSettings
    package var consumer: ConsumerSettings
    package var sweeper: SweeperSettings
    /// Consumers of this process.
    package var consumers: Int
    /// How long the bridge listens for a probe key's event.
    package var probeWindow: Duration
    /// How long one call to Redis may take before it counts as failed.
    package var timeout: Duration
    /// The TTL the generator gives the due index and its mark with every write (`RunKeyspace.safetyTTL`); nil for
    /// a kept run.
    package var safetyTTL: Duration? = RunKeyspace.safetyTTL
    /// Called with every batch of committed keys' latencies (µs), for `--metrics-port`.
    package var observeLatencies: (@Sendable ([Int64]) -> Void)?

    package init(generator: GeneratorSettings, consumer: ConsumerSettings, sweeper: SweeperSettings, consumers: Int, probeWindow: Duration,
                 timeout: Duration, observeLatencies: (@Sendable ([Int64]) -> Void)? = nil) {
        self.generator = generator
        self.consumer = consumer
        self.sweeper = sweeper
        self.consumers = consumers
        self.probeWindow = probeWindow
        self.timeout = timeout
        self.observeLatencies = observeLatencies
    }
}

/// The generator's settings: how many keys, their TTL, and its pace.
package struct GeneratorSettings: Sendable {
    /// Keys of the run, over every shard.
    package var keys: Int
    package var ttl: Duration
    /// Keys per second (0: as fast as the pipeline takes them), or the stages of the rate.
    package var rate: Int
    package var stages: [RateSchedule.Stage]
    /// Keys generated but not committed, at most, before the generator waits.
    package var maxOutstanding: Int

    package init(keys: Int, ttl: Duration, rate: Int, stages: [RateSchedule.Stage], maxOutstanding: Int) {
        self.keys = keys
        self.ttl = ttl
        self.rate = rate
        self.stages = stages
        self.maxOutstanding = maxOutstanding
    }

    /// The generator's pace: the stages, or one rate for every key; nil for as fast as the pipeline takes them.
    package var schedule: RateSchedule? {
        if !stages.isEmpty { return RateSchedule(stages: stages) }
        return rate > 0 ? RateSchedule(rate: rate, keys: keys) : nil
    }
}

/// The sweeper's settings: when it makes due keys expire, when it rescues a key whose event never came, and how
/// often it looks.
package struct SweeperSettings: Sendable {
    package var grace: Duration
    package var rescueAfter: Duration
    package var interval: Duration

    package init(grace: Duration, rescueAfter: Duration, interval: Duration) {
        self.grace = grace
        self.rescueAfter = rescueAfter
        self.interval = interval
    }
}

/// A consumer's settings, the same in every process of a run: the driver's, stored as JSON in the run's meta hash
/// (snake_case by the encoder) for the consumer processes that join. Durations are kept in microseconds, so that
/// the stored JSON reads plainly.
package struct ConsumerSettings: Codable, Equatable, Sendable {
    package var workUs: Int64
    package var lockTtlUs: Int64
    /// Entries per XREADGROUP, and keys of a batch in their work at once.
    package var batch: Int
    package var concurrency: Int
    package var commitEveryUs: Int64
    package var failRate: Double
    package var maxDeliveries: Int
    /// `--wait-replicas`: replicas that must hold every write before it counts as done (0: none).
    package var waitReplicas: Int

    package init(work: Duration, lockTTL: Duration, batch: Int, concurrency: Int, commitEvery: Duration, failRate: Double, maxDeliveries: Int,
                 waitReplicas: Int = 0) {
        self.workUs = work.microseconds
        self.lockTtlUs = lockTTL.microseconds
        self.batch = batch
        self.concurrency = concurrency
        self.commitEveryUs = commitEvery.microseconds
        self.failRate = failRate
        self.maxDeliveries = maxDeliveries
        self.waitReplicas = waitReplicas
    }

    package var work: Duration { .microseconds(workUs) }
    package var lockTTL: Duration { .microseconds(lockTtlUs) }
    package var commitEvery: Duration { .microseconds(commitEveryUs) }

    /// An entry idle this long is reclaimed from its consumer: by then its lock has certainly lapsed.
    package var reclaimIdle: Duration { lockTTL * 2 }

    /// A consumer's lease lasts this long without a heartbeat; heartbeats come every quarter of it, so three
    /// heartbeats in a row must be late (a loaded machine) before a live consumer is taken for dead.
    package var leaseTTL: Duration { max(.seconds(2), lockTTL * 2) }

    /// As stored in the run's meta hash.
    package var json: String { SnakeCaseJSON.text(of: self) }

    package static func decode(_ text: String) -> ConsumerSettings? {
        SnakeCaseJSON.value(ConsumerSettings.self, from: text)
    }
}
