/// The Redis Cluster hash slot of a key: CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the key's bytes,
/// modulo 16384, as the cluster specification defines it.
///
/// Hash tags are honoured: when the key holds a `{` and, after it, a `}` with at least one byte between them, only
/// the bytes between the first `{` and the first `}` after it are hashed, so that `{user1000}.following` and
/// `{user1000}.followers` share a slot. Otherwise (no `{`, no `}` after it, or `{}`) the whole key is hashed.
package enum HashSlot {
    /// How many hash slots a cluster has.
    package static let count = 16384

    /// The slot of `key`, in `0..<HashSlot.count`. Equal to what `CLUSTER KEYSLOT key` answers.
    package static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { bytes in Int(crc16(hashedPart(of: bytes))) & (count - 1) }
    }

    /// The part of `bytes` that the slot is computed from (the hash tag's content, or everything).
    static func hashedPart(of bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        guard let open = bytes.firstIndex(of: UInt8(ascii: "{")) else { return bytes }
        let afterOpen = open + 1
        guard let close = bytes[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close > afterOpen else { return bytes }
        return UnsafeBufferPointer(rebasing: bytes[afterOpen..<close])
    }

    /// CRC16-XMODEM of `bytes` (poly 0x1021, init 0, no reflection, no final xor): `crc16("123456789") == 0x31C3`.
    static func crc16(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    /// The CRC of each byte value, computed once, so that a key costs one lookup per byte.
    private static let table: [UInt16] = (0..<256).map { value in
        var crc = UInt16(value) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
