/// Retries an idempotent call while it fails transiently (`RedisError.isTransient`: a broken connection, a server
/// still loading after a restart): capped exponential backoff with jitter, for at most `giveUpAfter` of
/// continuous failure. Other server error replies are not retried: they are answers.
package func withRetries<T: Sendable>(
    giveUpAfter limit: Duration, _ body: () async throws -> T
) async throws -> T {
    let clock = ContinuousClock()
    var firstFailure: ContinuousClock.Instant?
    var backoff = Duration.milliseconds(20)
    while true {
        do {
            return try await body()
        } catch let error as RedisError where error.isTransient {
            let failedSince = firstFailure ?? clock.now
            firstFailure = failedSince
            let remaining = limit - (clock.now - failedSince)
            if remaining <= .zero { throw error }
            // The last wait ends at the limit, not a whole backoff past it: one more try there, then give up.
            let jitter = Duration.milliseconds(Int.random(in: 0...max(1, backoff.milliseconds / 2)))
            try await Task.sleep(for: min(backoff + jitter, remaining))
            backoff = min(backoff * 2, .seconds(2))
        }
    }
}
