import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

@Suite("RunKeyspace key names")
struct RunKeyspaceTests {
    let keyspace = RunKeyspace(namespace: "bench", runID: "r1").shard(0, tag: nil)

    // MARK: Names

    @Test func everyKeySharesTheRunPrefix() {
        #expect(keyspace.run.prefix == "bench:r1:")
        #expect(keyspace.dataPrefix == "bench:r1:k:")
        #expect(keyspace.lockPrefix == "bench:r1:lock:")
        #expect(keyspace.dueIndex == "bench:r1:due")
        #expect(keyspace.generatorMark == "bench:r1:generated")
        #expect(keyspace.stream == "bench:r1:stream")
        #expect(keyspace.processed == "bench:r1:processed")
        #expect(keyspace.commitRecords == "bench:r1:commits")
        #expect(keyspace.probeKey(deadline: 1700000000123, number: 400) == "bench:r1:probe:1700000000123:400")
        #expect(keyspace.deadline(ofProbeKey: "bench:r1:probe:1700000000123:400") == 1700000000123)
        #expect(keyspace.deadline(ofProbeKey: "bench:r1:k:400") == nil)
        #expect(keyspace.deadline(ofProbeKey: "bench:r2:probe:1:1") == nil)
        #expect(keyspace.deadLetters == "bench:r1:dead")
        #expect(keyspace.run.meta == "bench:r1:meta")
        #expect(keyspace.group == "workers")
    }

    @Test func keyNamesAreDistinct() {
        let names = [keyspace.dueIndex, keyspace.generatorMark, keyspace.stream, keyspace.processed, keyspace.deadLetters,
                     keyspace.run.meta, keyspace.dataKey(0), keyspace.lockPrefix + "0", keyspace.commitRecords, keyspace.probeKey(deadline: 1, number: 0)]
        #expect(Set(names).count == names.count)
    }

    @Test func dataKeys() {
        #expect(keyspace.dataKey(0) == "bench:r1:k:0")
        #expect(keyspace.dataKey(42) == "bench:r1:k:42")
        #expect(keyspace.dataKey(2_999_999) == "bench:r1:k:2999999")
    }

    // MARK: index(ofDataKey:)

    @Test(arguments: [0, 1, 42, 2_999_999, 999_999_999_999_999_999])
    func dataKeyRoundTrips(index: Int) {
        #expect(keyspace.index(ofDataKey: keyspace.dataKey(index)) == index)
    }

    @Test func leadingZerosAreDigits() {
        #expect(keyspace.index(ofDataKey: "bench:r1:k:007") == 7)
    }

    @Test(arguments: [
        "bench:r2:k:42",                          // another run
        "bench:r10:k:42",                         // a run whose id starts like ours
        "other:r1:k:42",                          // another namespace
        "bench:r1:lock:42",                       // a lock
        "bench:r1:due",                           // the due index
        "bench:r1:k:",                            // no digits
        "bench:r1:k:12a",                         // trailing garbage
        "bench:r1:k:-1",                          // sign
        "bench:r1:k:+1",
        "bench:r1:k: 1",
        "bench:r1:k:1.0",
        "bench:r1:k:٣",                           // an Arabic-Indic digit is not ASCII
        "bench:r1:k:1234567890123456789",         // 19 digits: longer than an index can be
        "bench:r1:k:99999999999999999999999",
        "bench:r1:K:1",
        "xbench:r1:k:1",
        "k:1",
        "",
    ])
    func rejectsKeysThatAreNotThisRunsDataKeys(key: String) {
        #expect(keyspace.index(ofDataKey: key) == nil)
    }

    @Test func otherRunsDoNotMatchEachOther() {
        let first = RunKeyspace(namespace: "ns", runID: "abc").shard(0, tag: nil)
        let second = RunKeyspace(namespace: "ns", runID: "abcd").shard(0, tag: nil)
        #expect(first.index(ofDataKey: second.dataKey(5)) == nil)
        #expect(second.index(ofDataKey: first.dataKey(5)) == nil)
        #expect(second.index(ofDataKey: second.dataKey(5)) == 5)
    }

    @Test func multiByteNamespace() {
        let unicode = RunKeyspace(namespace: "bänch", runID: "r").shard(0, tag: nil)
        #expect(unicode.dataKey(12) == "bänch:r:k:12")
        #expect(unicode.index(ofDataKey: "bänch:r:k:12") == 12)
        #expect(unicode.index(ofDataKey: "banch:r:k:12") == nil)
    }

    // MARK: Run ids

    @Test func newRunIDsAreShortLowercaseBase36() {
        let id = RunKeyspace.newRunID()
        #expect(id.count >= 5 && id.count <= 12, "\(id)")
        #expect(id.allSatisfy { ("0"..."9").contains($0) || ("a"..."z").contains($0) }, "\(id)")
    }

    @Test func newRunIDsStartWithTheTime() {
        let ids = (0..<20).map { _ in RunKeyspace.newRunID() }
        // The time in base 36, then 4 random base-36 characters.
        let timeParts = Set(ids.map { $0.dropLast(4) })
        #expect(timeParts.count <= 2)   // the same second, or at most two across a tick
        let seconds = Int(ids[0].dropLast(4), radix: 36)
        #expect(seconds != nil)
        #expect(abs((seconds ?? 0) - Int(WallClock.milliseconds() / 1000)) <= 2)
    }

    @Test func leftPadding() {
        #expect("7".leftPadded(to: 2) == "07")
        #expect("z".leftPadded(to: 3, with: " ") == "  z")
        #expect("123".leftPadded(to: 2) == "123")
        #expect("".leftPadded(to: 2) == "00")
    }
}
