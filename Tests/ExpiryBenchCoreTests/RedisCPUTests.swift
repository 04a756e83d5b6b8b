import Testing
@testable import ExpiryBenchCore

/// The run's weight on the server, from two INFO cpu readings.
@Suite("Redis CPU per key")
struct RedisCPUTests {
    @Test func perKeyAndShareOfOneCore() {
        // 3 s of Redis CPU for 300,000 keys in 10 s: 10 µs a key, 30 % of a core.
        let cpu = RedisCPU(start: 12.5, end: 15.5, keys: 300_000, duration: 10)
        #expect(cpu.microsecondsPerKey == 10)
        #expect(cpu.share == 0.3)
        #expect(cpu.line == "10.0 µs per key (30 % of one core at the achieved rate)")
    }

    @Test func unknownWhenAReadingFailedOrTheCounterWentBack() {
        #expect(RedisCPU(start: nil, end: 3, keys: 10, duration: 1).microsecondsPerKey == nil)
        #expect(RedisCPU(start: 3, end: nil, keys: 10, duration: 1).share == nil)
        // A restarted server starts its counters again: no figure rather than a wrong one.
        #expect(RedisCPU(start: 5, end: 1, keys: 10, duration: 1).microsecondsPerKey == nil)
        #expect(RedisCPU(start: nil, end: nil, keys: 10, duration: 1).line.hasPrefix("unknown ("))
    }

    @Test func noKeyFinishedHasNoPerKeyFigure() {
        let cpu = RedisCPU(start: 1, end: 2, keys: 0, duration: 4)
        #expect(cpu.microsecondsPerKey == nil)
        #expect(cpu.share == 0.25)
    }
}
