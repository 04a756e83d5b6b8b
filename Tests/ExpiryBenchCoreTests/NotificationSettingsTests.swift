import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

@Suite("NotificationSettings.missingFlags")
struct NotificationSettingsTests {
    @Test(arguments: [
        ("", "Ex"),
        ("Ex", ""),
        ("xE", ""),
        ("A", "E"),
        ("KEA", ""),
        ("gK", "Ex"),
        ("E", "x"),
        ("x", "E"),
        ("K", "Ex"),
        ("Kx", "E"),
        ("AKE", ""),
        ("KEg$lshzxetmdn", ""),
        ("Kg$lshzetmdn", "Ex"),   // every class but E and x: "e" (evicted) is not "E", nor "x"
    ])
    func missingFlags(value: String, missing: String) {
        #expect(NotificationSettings.missingFlags(in: value) == missing)
    }

    @Test(arguments: ["e", "ex"])
    func flagsAreCaseSensitive(value: String) {
        // "e" is evicted events, not keyevent events: E is still needed.
        #expect(NotificationSettings.missingFlags(in: value).hasPrefix("E"))
    }

    @Test(arguments: ["", "K", "g", "A", "E", "x", "Kg", "KA", "gx", "Ee", "t", "KEA", "$lsh"])
    func addingTheMissingFlagsIsEnough(value: String) {
        let fixed = value + NotificationSettings.missingFlags(in: value)
        #expect(NotificationSettings.missingFlags(in: fixed) == "")
        #expect(fixed.contains("E"))
        #expect(fixed.contains("x") || fixed.contains("A"))
    }

    @Test(arguments: ["", "K", "g", "A", "E", "x", "Kg", "KEA", "Ex"])
    func neverAddsAFlagAlreadyPresent(value: String) {
        let missing = NotificationSettings.missingFlags(in: value)
        for flag in missing {
            #expect(!value.contains(flag), "'\(flag)' added to '\(value)'")
        }
        #expect(missing.count <= 2)
    }
}
