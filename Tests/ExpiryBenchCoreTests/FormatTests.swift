import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

@Suite("Format numbers for the progress line and the report")
struct FormatTests {
    // MARK: count

    @Test(arguments: [
        (0, "0"),
        (7, "7"),
        (999, "999"),
        (1000, "1,000"),
        (12_345, "12,345"),
        (123_456, "123,456"),
        (1_234_567, "1,234,567"),
        (3_000_000, "3,000,000"),
        (1_000_000_000, "1,000,000,000"),
        (Int.max, "9,223,372,036,854,775,807"),
    ])
    func groupsThousands(value: Int, expected: String) {
        #expect(Format.count(value) == expected)
    }

    @Test(arguments: [(-1, "-1"), (-999, "-999"), (-1000, "-1,000"), (-1_234_567, "-1,234,567"), (-Int.max, "-9,223,372,036,854,775,807")])
    func negativeCounts(value: Int, expected: String) {
        #expect(Format.count(value) == expected)
    }

    @Test
    func smallestInt() {
        #expect(Format.count(Int.min) == "-9,223,372,036,854,775,808")
    }

    @Test func groupingKeepsTheDigits() {
        var value = 1
        for digits in 1...19 {
            let text = Format.count(value)
            #expect(text.filter { $0 != "," } == String(value))
            #expect(text.filter { $0 == "," }.count == (digits - 1) / 3, "\(text)")
            #expect(Format.count(-value) == "-" + text)
            if digits < 19 { value *= 10 }
        }
    }

    @Test func groupsAreAlwaysThreeDigits() {
        for value in [1_001, 10_010, 100_100, 1_001_001, 987_654_321_012] {
            let groups = Format.count(value).split(separator: ",")
            #expect(groups.dropFirst().allSatisfy { $0.count == 3 })
            #expect((1...3).contains(groups.first?.count ?? 0))
        }
    }

    // MARK: percent

    @Test(arguments: [
        (0.0, "0.0%"),
        (1.0, "100.0%"),
        (0.5, "50.0%"),
        (0.25, "25.0%"),
        (0.123, "12.3%"),
        (0.015625, "1.6%"),
        (1.0 / 3.0, "33.3%"),
        (0.0004, "0.0%"),
        (1.5, "150.0%"),
        (-0.05, "-5.0%"),
    ])
    func percent(share: Double, expected: String) {
        #expect(Format.percent(share) == expected)
    }

    // MARK: milliseconds

    @Test(arguments: [
        (0.0, "0.00ms"),
        (0.42, "0.42ms"),
        (9.994, "9.99ms"),
        (12.34, "12.3ms"),
        (99.9, "99.9ms"),
        (412.4, "412ms"),
        (3200.0, "3200ms"),
        (9999.0, "9999ms"),
        (10_000.0, "10.0s"),
        (12_345.0, "12.3s"),
    ])
    func milliseconds(value: Double, expected: String) {
        #expect(Format.milliseconds(value) == expected)
    }

    // MARK: padding helpers used by the tables

    @Test func rightPadding() {
        #expect("ab".padding(5) == "ab   ")
        #expect("abcdef".padding(3) == "abcdef")
        #expect("é".padding(3) == "é  ")   // pads by characters, not bytes
    }
}
