import Foundation
import ExpiryPipeline
import Histogram

/// HdrHistogram's interval log format (`.hlog`, "Histogram log format version 1.3"), as written by
/// HdrHistogram's `HistogramLogWriter` and read by its `HistogramLogReader` and HistogramLogAnalyzer:
/// one line per interval with the histogram in HdrHistogram's V2 compressed encoding, base64.
///
/// The V2 encoding is a header and the counts as ZigZag LEB128 numbers (runs of empty buckets as negative run
/// lengths), in HdrHistogram's bucket layout; "compressed" means wrapped in a zlib stream. The zlib stream is
/// written with stored (uncompressed) DEFLATE blocks, which every inflater reads: the V2 payload is already
/// compact, and this keeps the tool free of a compression library.
package enum HdrLog {
    /// The log text for one interval covering the whole run.
    /// - Parameters:
    ///   - startTime: the interval's start, in seconds since the epoch.
    ///   - length: the interval's length in seconds.
    ///   - highestTrackableValue: the histogram's highest trackable value (as it was created with).
    ///   - maxValueUnitRatio: what `Interval_Max` is divided by (1000: microseconds shown as milliseconds).
    package static func log(_ histogram: Histogram<UInt64>, startTime: Double, length: Double,
                           highestTrackableValue: UInt64, maxValueUnitRatio: Double = 1000) -> String {
        header(startTime: startTime) + line(histogram, start: 0, length: length, highestTrackableValue: highestTrackableValue,
                                            maxValueUnitRatio: maxValueUnitRatio)
    }

    /// The log's header: format version, start and base time (seconds since the epoch), the column names.
    package static func header(startTime: Double) -> String {
        let started = Date(timeIntervalSince1970: startTime)
        var text = "#[Histogram log format version 1.3]\n"
        text += "#[StartTime: \(String(format: "%.3f", startTime)) (seconds since epoch), \(started)]\n"
        text += "#[BaseTime: \(String(format: "%.3f", startTime)) (seconds since epoch)]\n"
        text += "#[Values are deadline → commit latencies in microseconds; Interval_Max in milliseconds]\n"
        text += "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
        return text
    }

    /// One interval's line: its start (seconds after the base time), length, max and compressed histogram.
    package static func line(_ histogram: Histogram<UInt64>, start: Double, length: Double,
                            highestTrackableValue: UInt64, maxValueUnitRatio: Double = 1000) -> String {
        let encoded = Data(compressed(histogram, highestTrackableValue: highestTrackableValue)).base64EncodedString()
        let maximum = Double(histogram.totalCount > 0 ? histogram.maxRecorded : 0) / maxValueUnitRatio
        return String(format: "%.3f,%.3f,%.3f,", start, length, maximum) + encoded + "\n"
    }

    static let encodingCookie: UInt32 = 0x1c84_9303 | 0x10
    static let compressedEncodingCookie: UInt32 = 0x1c84_9304 | 0x10

    /// The V2 compressed encoding: cookie, compressed length, zlib stream of the V2 encoding.
    package static func compressed(_ histogram: Histogram<UInt64>, highestTrackableValue: UInt64) -> [UInt8] {
        let plain = encoded(histogram, highestTrackableValue: highestTrackableValue)
        let stream = zlibStored(plain)
        var out: [UInt8] = []
        append32(&out, compressedEncodingCookie)
        append32(&out, UInt32(stream.count))
        out += stream
        return out
    }

    /// The V2 (uncompressed) encoding: header, then the counts up to the bucket of the largest value.
    package static func encoded(_ histogram: Histogram<UInt64>, highestTrackableValue: UInt64) -> [UInt8] {
        let digits = Int(histogram.numberOfSignificantValueDigits.rawValue)
        let layout = Layout(lowestDiscernibleValue: histogram.lowestDiscernibleValue, significantDigits: digits)
        var counts: [UInt64] = []
        if histogram.totalCount > 0 {
            counts = Array(repeating: 0, count: layout.index(of: histogram.maxRecorded) + 1)
            for step in histogram.recordedValues() {
                let index = layout.index(of: step.value)
                if index < counts.count { counts[index] += UInt64(step.count) }
            }
        }
        var payload: [UInt8] = []
        var i = 0
        while i < counts.count {
            let count = counts[i]
            i += 1
            if count == 0 {
                var zeros: Int64 = 1
                while i < counts.count, counts[i] == 0 {
                    zeros += 1
                    i += 1
                }
                appendZigZag(&payload, zeros > 1 ? -zeros : 0)
            } else {
                appendZigZag(&payload, Int64(count))
            }
        }
        var out: [UInt8] = []
        append32(&out, encodingCookie)
        append32(&out, UInt32(payload.count))
        append32(&out, 0)  // normalizing index offset
        append32(&out, UInt32(digits))
        append64(&out, histogram.lowestDiscernibleValue)
        append64(&out, highestTrackableValue)
        append64(&out, Double(1).bitPattern)  // integer to double value conversion ratio
        return out + payload
    }

    /// HdrHistogram's bucket layout: which counts-array slot a value falls in.
    struct Layout {
        let unitMagnitude: Int
        let subBucketHalfCountMagnitude: Int
        let subBucketHalfCount: Int
        let subBucketMask: UInt64
        let leadingZeroCountBase: Int

        init(lowestDiscernibleValue: UInt64, significantDigits: Int) {
            let largestWithSingleUnitResolution = 2 * pow(10.0, Double(significantDigits))
            unitMagnitude = Int(log2(Double(max(1, lowestDiscernibleValue))).rounded(.down))
            subBucketHalfCountMagnitude = Int(log2(largestWithSingleUnitResolution).rounded(.up)) - 1
            let subBucketCount = 1 << (subBucketHalfCountMagnitude + 1)
            subBucketHalfCount = subBucketCount / 2
            subBucketMask = UInt64(subBucketCount - 1) << UInt64(unitMagnitude)
            leadingZeroCountBase = 64 - unitMagnitude - subBucketHalfCountMagnitude - 1
        }

        func index(of value: UInt64) -> Int {
            let bucketIndex = leadingZeroCountBase - (value | subBucketMask).leadingZeroBitCount
            let subBucketIndex = Int(value >> UInt64(bucketIndex + unitMagnitude))
            let bucketBaseIndex = (bucketIndex + 1) << subBucketHalfCountMagnitude
            return bucketBaseIndex + subBucketIndex - subBucketHalfCount
        }
    }

    /// A zlib stream (RFC 1950) holding `data` in stored DEFLATE blocks (RFC 1951, BTYPE 00).
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            let final: UInt8 = offset + length == data.count ? 1 : 0
            out.append(final)
            out.append(UInt8(length & 0xff)); out.append(UInt8(length >> 8))
            out.append(UInt8(~length & 0xff)); out.append(UInt8((~length >> 8) & 0xff))
            out += data[offset..<(offset + length)]
            offset += length
        } while offset < data.count
        append32(&out, adler32(data))
        return out
    }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        return b << 16 | a
    }

    /// ZigZag then LEB128, as HdrHistogram's `ZigZagEncoding.putLong` (the ninth byte carries 8 bits).
    static func appendZigZag(_ out: inout [UInt8], _ value: Int64) {
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        for _ in 0..<8 {
            if v >> 7 == 0 {
                out.append(UInt8(v))
                return
            }
            out.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v & 0xff))
    }

    static func append32(_ out: inout [UInt8], _ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8((value >> UInt32(shift)) & 0xff)) }
    }

    static func append64(_ out: inout [UInt8], _ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((value >> UInt64(shift)) & 0xff)) }
    }
}
