import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

@Suite("DurationText parsing and formatting")
struct DurationTextTests {
    // MARK: parse

    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)),
        ("2s", .seconds(2)),
        ("1m", .seconds(60)),
        ("1h", .seconds(3600)),
        ("1.5s", .milliseconds(1500)),
        ("500us", .microseconds(500)),
        ("500µs", .microseconds(500)),
        ("0", .zero),
        ("0ms", .zero),
        ("0.5ms", .microseconds(500)),
        ("100ms", .milliseconds(100)),
        ("10000ms", .seconds(10)),
        (" 2s ", .seconds(2)),
    ])
    func parsesDurationsWithUnits(text: String, expected: Duration) {
        #expect(DurationText.parse(text) == expected)
    }

    @Test(arguments: ["banana", "5", "-1s", "ms", "", "s", "1e3ms", "1 s", "1.2.3s", "2d", "inf", "infs", "nans", "+1s", "-0.5ms", "5 "])
    func rejectsNonDurations(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test func rejectsDurationsTooLongToRepresent() {
        #expect(DurationText.parse("999999999999h") == nil)
    }

    @Test func parsedMillisecondsAreExactNanoseconds() throws {
        let parsed = try #require(DurationText.parse("5ms"))
        #expect(parsed.components.seconds == 0)
        #expect(parsed.components.attoseconds == 5_000_000_000_000_000)
        #expect(parsed.milliseconds == 5)
    }

    @Test(arguments: [
        ("\t250ms\t", Duration.milliseconds(250)),
        ("1.5us", .nanoseconds(1500)),
        ("0.001ms", .microseconds(1)),
        ("2.5m", .seconds(150)),
        ("0.25h", .seconds(900)),
        ("86400s", .seconds(86_400)),
    ])
    func fractionalAndPaddedInput(text: String, expected: Duration) {
        #expect(DurationText.parse(text) == expected)
    }

    @Test func everyWholeMillisecondParsesExactly() {
        for n in 0...2000 {
            #expect(DurationText.parse("\(n)ms") == .milliseconds(n), "\(n)ms")
        }
        for n in 0...600 {
            #expect(DurationText.parse("\(n)s") == .seconds(n), "\(n)s")
        }
    }

    // MARK: format

    @Test(arguments: [
        (Duration.milliseconds(250), "250ms"),
        (.seconds(2), "2s"),
        (.milliseconds(1500), "1.5s"),
        (.microseconds(500), "500µs"),
        (.microseconds(850), "850µs"),
        (.zero, "0"),
        (.milliseconds(5), "5ms"),
        (.seconds(90), "90s"),
        (.seconds(120), "2m"),
        (.seconds(150), "2.5m"),
        (.seconds(3600), "60m"),
        (.microseconds(1250), "1.25ms"),
    ])
    func formatsShortHumanForm(duration: Duration, expected: String) {
        #expect(DurationText.format(duration) == expected)
    }

    @Test(arguments: ["250ms", "2s", "1.5s", "500µs", "2m", "0", "12.5ms"])
    func formatThenParseRoundTrips(text: String) throws {
        let parsed = try #require(DurationText.parse(text))
        #expect(DurationText.format(parsed) == text)
        #expect(DurationText.parse(DurationText.format(parsed)) == parsed)
    }

    // MARK: Duration helpers

    @Test func secondsAsDouble() {
        #expect(Duration.milliseconds(1500).seconds == 1.5)
        #expect(Duration.zero.seconds == 0)
        #expect(Duration.seconds(90).seconds == 90)
        #expect(abs(Duration.microseconds(250).seconds - 0.000_25) < 1e-12)
    }

    @Test func wholeMillisecondsRoundDown() {
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
        #expect(Duration.microseconds(2999).milliseconds == 2)
        #expect(Duration.seconds(3).milliseconds == 3000)
        #expect(Duration.zero.milliseconds == 0)
    }
}
