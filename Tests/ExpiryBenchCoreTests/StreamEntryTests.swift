import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// One `[id, [field, value, ...]]` element, as Redis sends it.
private func entry(_ id: String, _ fields: [String]) -> RESPValue {
    .array([.bulk(id), .array(fields.map(RESPValue.bulk))])
}

@Suite("StreamEntry parsing of XREADGROUP and XAUTOCLAIM replies")
struct StreamEntryTests {
    // MARK: One entry

    @Test func parsesIndexAndDeadline() throws {
        let parsed = try #require(StreamEntry(entry("1700000000000-3", ["k", "42", "d", "1700000000123"])))
        #expect(parsed == StreamEntry(id: "1700000000000-3", index: 42, deadline: 1_700_000_000_123))
    }

    @Test func fieldOrderAndExtraFieldsDoNotMatter() throws {
        let parsed = try #require(StreamEntry(entry("5-0", ["via", "sweeper", "d", "900", "k", "7"])))
        #expect(parsed.id == "5-0")
        #expect(parsed.index == 7)
        #expect(parsed.deadline == 900)
    }

    @Test func integerValuesAreAccepted() throws {
        let value = RESPValue.array([.bulk("9-1"), .array([.bulk("k"), .integer(3), .bulk("d"), .integer(1234)])])
        #expect(StreamEntry(value) == StreamEntry(id: "9-1", index: 3, deadline: 1234))
    }

    @Test func deletedEntryIsSkipped() {
        // XREADGROUP with an id other than ">" returns [id, nil] for entries deleted since delivery.
        #expect(StreamEntry(.array([.bulk("1-0"), .null])) == nil)
    }

    @Test(arguments: [
        entry("1-0", ["other", "x"]),             // not one of ours
        entry("1-0", ["k", "5"]),                 // no deadline
        entry("1-0", ["d", "5"]),                 // no index
        entry("1-0", ["k", "five", "d", "5"]),    // index not a number
        entry("1-0", ["k", "5", "d", "soon"]),    // deadline not a number
        entry("1-0", []),
        entry("1-0", ["k"]),                      // odd field list
        RESPValue.array([.bulk("1-0")]),
        RESPValue.array([.null, .array([.bulk("k"), .bulk("1"), .bulk("d"), .bulk("2")])]),
        RESPValue.bulk("1-0"),
        RESPValue.null,
    ])
    func foreignOrMalformedEntriesAreRejected(value: RESPValue) {
        #expect(StreamEntry(value) == nil)
    }

    // MARK: XREADGROUP

    @Test func readGroupReply() {
        let reply = RESPValue.array([
            .array([.bulk("bench:r1:stream"), .array([
                entry("10-0", ["k", "1", "d", "100"]),
                .array([.bulk("11-0"), .null]),                // deleted
                entry("12-0", ["foreign", "yes"]),             // not ours
                entry("13-0", ["k", "2", "d", "200"]),
            ])]),
        ])
        #expect(StreamEntry.fromReadGroup(reply) == [
            StreamEntry(id: "10-0", index: 1, deadline: 100),
            StreamEntry(id: "13-0", index: 2, deadline: 200),
        ])
    }

    @Test func readGroupReplyOverSeveralStreams() {
        let reply = RESPValue.array([
            .array([.bulk("a"), .array([entry("1-0", ["k", "1", "d", "1"])])]),
            .array([.bulk("b")]),                               // malformed, skipped
            .array([.bulk("c"), .array([entry("2-0", ["k", "2", "d", "2"])])]),
        ])
        #expect(StreamEntry.fromReadGroup(reply).map(\.index) == [1, 2])
    }

    @Test func readGroupTimeoutIsEmpty() {
        #expect(StreamEntry.fromReadGroup(.null) == [])
        #expect(StreamEntry.fromReadGroup(.array([])) == [])
        #expect(StreamEntry.fromReadGroup(.array([.array([.bulk("s"), .array([])])])) == [])
    }

    // MARK: XAUTOCLAIM

    @Test func autoClaimReplyWithDeletedIDs() {
        // Redis 7: [next cursor, [entries], [ids deleted meanwhile]].
        let reply = RESPValue.array([
            .bulk("1700000000500-0"),
            .array([entry("1700000000100-0", ["k", "17", "d", "1700000000050"]), entry("1700000000200-0", ["z", "1"])]),
            .array([.bulk("1700000000150-0")]),
        ])
        let (entries, cursor) = StreamEntry.fromAutoClaim(reply)
        #expect(cursor == "1700000000500-0")
        #expect(entries == [StreamEntry(id: "1700000000100-0", index: 17, deadline: 1_700_000_000_050)])
    }

    @Test func autoClaimReplyFromRedis62() {
        // Redis 6.2: [next cursor, [entries]], deleted entries come back with nil fields.
        let reply = RESPValue.array([.bulk("0-0"), .array([.array([.bulk("3-0"), .null]), entry("4-0", ["k", "4", "d", "40"])])])
        let (entries, cursor) = StreamEntry.fromAutoClaim(reply)
        #expect(cursor == "0-0")
        #expect(entries == [StreamEntry(id: "4-0", index: 4, deadline: 40)])
    }

    @Test func malformedAutoClaimRestartsFromZero() {
        for reply: RESPValue in [.null, .array([]), .array([.bulk("5-0")]), .array([.null, .array([])]), .error("ERR")] {
            let (entries, cursor) = StreamEntry.fromAutoClaim(reply)
            #expect(entries.isEmpty)
            #expect(cursor == "0-0")
        }
    }

    // MARK: Stream ids

    @Test func streamIDsOrderNumericallyNotAsText() throws {
        let early = try #require(StreamID("999-5"))
        let late = try #require(StreamID("1000-0"))
        #expect(early < late)
        #expect(try #require(StreamID("7-2")) < #require(StreamID("7-10")))
        #expect("999-5" > "1000-0")   // why the text cannot be compared directly
        #expect(late.description == "1000-0")
        #expect(StreamID("0-0") == StreamID.zero)
    }

    @Test(arguments: ["", "5", "a-b", "1-2-3", "1-", "x-1"])
    func invalidStreamIDs(text: String) {
        #expect(StreamID(text) == nil)
    }
}
