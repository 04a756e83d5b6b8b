import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

/// `--rate` as one rate or stages: how many keys, when each is due, which stage a key or a moment belongs to.
@Suite("RateSchedule")
struct RateScheduleTests {
    @Test func oneRateHasNoStages() throws {
        let parsed = try RateSchedule.parse("10000")
        #expect(parsed.rate == 10_000 && parsed.stages.isEmpty)
        #expect(try RateSchedule.parse("0").rate == 0)
    }

    @Test func stagesSetTheKeysAndTheHighestRate() throws {
        let parsed = try RateSchedule.parse("2000:10s, 8000:10s,12000:10s")
        #expect(parsed.rate == 12_000)
        #expect(parsed.stages.map(\.rate) == [2000, 8000, 12000])
        let schedule = RateSchedule(stages: parsed.stages)
        #expect(schedule.keys == 220_000)
        #expect(schedule.seconds == 30)
    }

    @Test func keysAreDueAtTheirStagesRate() throws {
        let schedule = RateSchedule(stages: try RateSchedule.parse("1000:2s,4000:1s").stages)
        #expect(schedule.offset(ofKey: 0) == 0)
        #expect(schedule.offset(ofKey: 1000) == 1)
        #expect(schedule.offset(ofKey: 2000) == 2, "the first key of stage 2 is due when stage 2 starts")
        #expect(schedule.offset(ofKey: 4000) == 2.5)
        #expect(schedule.stage(ofKey: 1999) == 0 && schedule.stage(ofKey: 2000) == 1 && schedule.stage(ofKey: 99_999) == 1)
        #expect(schedule.stage(at: 1.99) == 0 && schedule.stage(at: 2) == 1 && schedule.stage(at: 60) == 1)
        #expect(schedule.stage(at: -1) == 0)
        #expect(schedule.rate(atKey: 2500) == 4000)
    }

    @Test func oneRateIsOneStageOverEveryKey() {
        let schedule = RateSchedule(rate: 10_000, keys: 600_000)
        #expect(schedule.keys == 600_000)
        #expect(schedule.offset(ofKey: 300_000) == 30)
    }

    @Test(arguments: ["fast", "1000:", "1000:10", "0:10s", "-5:1s", "1000:10s,,2000:1s", "1000:0s"])
    func badStagesSayWhatIsAccepted(_ text: String) {
        #expect {
            _ = try RateSchedule.parse(text)
        } throws: { error in
            (error as? RateScheduleError)?.description.contains("1000:30s,5000:30s,10000:1m") == true
        }
    }

    @Test func csvNamesEachSecondsStage() throws {
        let samples = [0.5, 1.5, 2.5].map { StatsReporter.Sample(elapsed: $0, processed: 0, rate: 100, unexpired: 0, pending: 0, streamLength: 0, p99Milliseconds: 0) }
        let text = SeriesFiles.csv(samples, stages: try RateSchedule.parse("1000:1s,3000:2s").stages)
        let lines = text.split(separator: "\n")
        #expect(lines[0].hasSuffix(",stage,target_rate"))
        #expect(lines[1].hasSuffix(",1,1000") && lines[2].hasSuffix(",2,3000") && lines[3].hasSuffix(",2,3000"))
        #expect(!SeriesFiles.csv(samples).contains("stage"))
    }
}
