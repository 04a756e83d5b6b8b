import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

/// `--threshold`: what load testers write is read as they mean it, bad input names what is accepted, and the
/// check reads the report's own figures.
@Suite("Threshold")
struct ThresholdTests {
    @Test(arguments: [
        ("p99<250ms", Threshold.Metric.p99, Threshold.Comparison.less, 250.0, false),
        ("p50 <= 1s", .p50, .lessOrEqual, 1000, false),
        ("max<2s", .max, .less, 2000, false),
        ("p999<500us", .p999, .less, 0.5, false),
        ("lost==0", .lost, .equal, 0, false),
        ("late<1%", .late, .less, 1, true),
        ("duplicates<=10", .duplicates, .lessOrEqual, 10, false),
    ])
    func parses(_ text: String, _ metric: Threshold.Metric, _ comparison: Threshold.Comparison, _ limit: Double, _ percent: Bool) throws {
        let threshold = try Threshold(parsing: text)
        #expect(threshold.metric == metric)
        #expect(threshold.comparison == comparison)
        #expect(threshold.limit == limit)
        #expect(threshold.isPercent == percent)
        #expect(threshold.text == text.filter { !$0.isWhitespace })
    }

    @Test(arguments: ["p99", "p98<1s", "p99<fast", "lost==none", "late<-1%", ""])
    func rejectsWithAMessageThatSaysWhatIsAccepted(_ text: String) {
        #expect {
            _ = try Threshold(parsing: text)
        } throws: { error in
            (error as? ThresholdError)?.description.contains("p99<250ms") == true
        }
    }

    @Test func comparesAgainstTheLimit() throws {
        let below = try Threshold(parsing: "p99<250ms")
        #expect(below.holds(249.9))
        #expect(!below.holds(250))
        #expect(!below.holds(nil), "no latency data is not a pass")
        #expect(try Threshold(parsing: "p99<=250ms").holds(250))
        #expect(try Threshold(parsing: "lost==0").holds(0))
        #expect(try !Threshold(parsing: "lost==0").holds(1))
    }

    @Test func percentagesAreOfTheKeysGenerated() throws {
        let late = try Threshold(parsing: "late<1%")
        #expect(late.format(0.5) == "0.5 %")
        let lost = try Threshold(parsing: "lost<3")
        #expect(lost.format(2) == "2 keys")
        #expect(try Threshold(parsing: "p99<1s").format(12.345) == "12.35 ms")
    }

    @Test func resultsReadTheReportAndTheJSONCarriesThem() throws {
        var report = ReportFixture.report()  // p99 10 ms, 2 of 1,000 keys lost, 1 duplicate commit
        report.lateKeys = 15
        let thresholds = try ["p99<250ms", "p99<1ms", "lost==0", "lost<=2", "late<1%", "late<2%", "duplicates==0"].map { try Threshold(parsing: $0) }
        let results = try #require(RunReport.thresholdResults(thresholds, report: report, abort: nil))
        #expect(results.map(\.ok) == [true, false, false, true, false, true, false])
        #expect(results[4].value == 1.5)
        report.thresholds = results
        let object = try #require(try JSONSerialization.jsonObject(with: ReportFile.encode(report)) as? [String: Any])
        let first = try #require((object["thresholds"] as? [[String: Any]])?.first)
        #expect(first["threshold"] as? String == "p99<250ms" && first["ok"] as? Bool == true && first["value"] as? Double == 10)
        #expect(RunReport.thresholdResults([], report: report, abort: nil) == nil, "no thresholds: no field")
        #expect(ReportPrinter.render(report).contains("FAILED p99<1ms  (p99 10.00 ms)"))
    }
}
