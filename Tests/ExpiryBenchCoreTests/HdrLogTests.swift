import Foundation
import Histogram
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline

@Suite("HdrHistogram interval log (.hlog)")
struct HdrLogTests {
    /// A histogram shaped like the run's: 1 µs to 1 h, 3 significant digits.
    func sample() -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(highestTrackableValue: LatencyRecorder.highestTrackableValue, numberOfSignificantValueDigits: .three)
        for (value, count) in [(UInt64(0), 1), (1, 1), (1000, 3), (123_456, 2), (3_000_000, 1)] {
            for _ in 0..<count { _ = histogram.record(value) }
        }
        return histogram
    }

    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The known answer comes from an independent implementation: the Python `hdrhistogram` package
    /// (HdrHistogram(1, 3600000000, 3), the same records, `encode()`, base64-decoded, zlib-inflated).
    /// (The sample has no lone empty bucket: Python writes one as a run of one, -1, where HdrHistogram's Java
    /// encoder, which this one follows, writes a count of 0; both decode to the same counts.)
    @Test func v2EncodingMatchesHdrHistogramsOwn() {
        let expected = "1c8493130000000b0000000000000003000000000000000100000000d693a4003ff00000000000000202cb0f06bf6e04db4802"
        #expect(hex(HdrLog.encoded(sample(), highestTrackableValue: LatencyRecorder.highestTrackableValue)) == expected)
    }

    @Test func compressedFormIsAZlibStreamOfTheEncoding() throws {
        let plain = HdrLog.encoded(sample(), highestTrackableValue: LatencyRecorder.highestTrackableValue)
        let compressed = HdrLog.compressed(sample(), highestTrackableValue: LatencyRecorder.highestTrackableValue)
        #expect(hex(Array(compressed.prefix(4))) == "1c849314")
        let length = compressed[4..<8].reduce(0) { $0 << 8 | Int($1) }
        let stream = Array(compressed.dropFirst(8))
        #expect(stream.count == length)
        // zlib header, stored blocks, Adler-32 of the inflated bytes.
        #expect(stream[0] == 0x78 && (Int(stream[0]) << 8 | Int(stream[1])) % 31 == 0)
        var inflated: [UInt8] = []
        var position = 2
        var final = false
        while !final {
            final = stream[position] & 1 == 1
            #expect(stream[position] & 0b110 == 0, "stored block")
            let blockLength = Int(stream[position + 1]) | Int(stream[position + 2]) << 8
            let complement = Int(stream[position + 3]) | Int(stream[position + 4]) << 8
            #expect(blockLength ^ complement == 0xffff)
            inflated += stream[(position + 5)..<(position + 5 + blockLength)]
            position += 5 + blockLength
        }
        #expect(inflated == plain)
        let adler = stream[position..<(position + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        #expect(adler == HdrLog.adler32(plain))
        #expect(position + 4 == stream.count)
    }

    @Test func adler32KnownAnswer() {
        // RFC 1950's checksum of "Wikipedia" is 0x11E60398.
        #expect(HdrLog.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
    }

    @Test func storedBlocksSplitAt65535Bytes() {
        let data = [UInt8](repeating: 7, count: 70_000)
        let stream = HdrLog.zlibStored(data)
        #expect(stream[2] == 0)  // first block not final
        #expect(Int(stream[3]) | Int(stream[4]) << 8 == 65_535)
        #expect(stream.count == 2 + 5 + 65_535 + 5 + (70_000 - 65_535) + 4)
    }

    @Test func logHasTheHeaderAndOneIntervalLine() {
        let text = HdrLog.log(sample(), startTime: 1_795_293_255.41, length: 12.5, highestTrackableValue: LatencyRecorder.highestTrackableValue)
        let lines = text.split(separator: "\n")
        #expect(lines.first == "#[Histogram log format version 1.3]")
        #expect(lines.contains("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""))
        let interval = String(lines.last ?? "")
        #expect(interval.hasPrefix("0.000,12.500,3000.000,HISTF"))
    }

    @Test func emptyHistogramEncodesNoCounts() {
        let empty = Histogram<UInt64>(highestTrackableValue: LatencyRecorder.highestTrackableValue, numberOfSignificantValueDigits: .three)
        let encoded = HdrLog.encoded(empty, highestTrackableValue: LatencyRecorder.highestTrackableValue)
        #expect(encoded.count == 40)
        #expect(hex(Array(encoded[4..<8])) == "00000000")
    }
}
