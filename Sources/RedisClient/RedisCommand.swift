/// A Redis command encoded once, in RESP2 wire format, ready to be written to a socket.
///
/// Commands are encoded by Swift rather than by hiredis's variadic `redisCommand` (which Swift cannot call):
/// the bytes are handed to hiredis as an already formatted command.
package struct RedisCommand: Sendable, CustomStringConvertible {
    /// The RESP2 bytes of the command.
    package private(set) var bytes: [UInt8]
    /// The command's name, for error messages (never its arguments, which may hold secrets).
    package let name: String

    /// Encodes `arguments` (the first is the command name) as a RESP2 array of bulk strings.
    package init(_ arguments: [String]) {
        name = arguments.first?.uppercased() ?? ""
        bytes = []
        bytes.reserveCapacity(16 + arguments.reduce(0) { $0 + $1.utf8.count + 16 })
        Self.appendHeader(&bytes, count: arguments.count)
        for argument in arguments { Self.appendBulk(&bytes, argument.utf8) }
    }

    /// Encodes a command from its name and arguments.
    package init(_ name: String, _ arguments: String...) {
        self.init([name] + arguments)
    }

    package var description: String { name }

    static func appendHeader(_ out: inout [UInt8], count: Int) {
        out.append(UInt8(ascii: "*"))
        appendDecimal(&out, count)
        out.append(13); out.append(10)
    }

    static func appendBulk(_ out: inout [UInt8], _ utf8: String.UTF8View) {
        out.append(UInt8(ascii: "$"))
        appendDecimal(&out, utf8.count)
        out.append(13); out.append(10)
        out.append(contentsOf: utf8)
        out.append(13); out.append(10)
    }

    static func appendDecimal(_ out: inout [UInt8], _ value: Int) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        appendDigits(&out, value.magnitude)
    }

    private static func appendDigits(_ out: inout [UInt8], _ value: UInt) {
        // Digits right to left into a fixed buffer (20 digits hold any UInt64), then copied in order.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var remaining = value
            var start = 20
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            } while remaining > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[start..<20]))
        }
    }

    /// The number of decimal digits of `value` (with the sign for a negative one).
    static func decimalLength(_ value: Int) -> Int {
        var count = value < 0 ? 2 : 1
        var remaining = value.magnitude
        while remaining >= 10 {
            remaining /= 10
            count += 1
        }
        return count
    }
}

/// Builds one command argument by argument without intermediate arrays; used on hot paths where a batch
/// turns into one command with many arguments (a script call over hundreds of keys).
package struct RedisCommandBuilder {
    private var arguments: [UInt8] = []
    private var count = 0
    private let name: String

    package init(_ name: String, capacity: Int = 256) {
        self.name = name.uppercased()
        arguments.reserveCapacity(capacity)
        append(name)
    }

    /// Appends a text argument.
    package mutating func append(_ argument: String) {
        var argument = argument
        argument.withUTF8 { utf8 in
            arguments.append(UInt8(ascii: "$"))
            RedisCommand.appendDecimal(&arguments, utf8.count)
            arguments.append(13); arguments.append(10)
            arguments.append(contentsOf: utf8)
            arguments.append(13); arguments.append(10)
        }
        count += 1
    }

    /// Appends an integer argument in decimal, without making a String.
    package mutating func append(_ argument: Int) {
        arguments.append(UInt8(ascii: "$"))
        RedisCommand.appendDecimal(&arguments, RedisCommand.decimalLength(argument))
        arguments.append(13); arguments.append(10)
        RedisCommand.appendDecimal(&arguments, argument)
        arguments.append(13); arguments.append(10)
        count += 1
    }

    /// The finished command.
    package func build() -> RedisCommand {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(arguments.count + 16)
        RedisCommand.appendHeader(&bytes, count: count)
        bytes.append(contentsOf: arguments)
        return RedisCommand(name: name, bytes: bytes)
    }
}

extension RedisCommand {
    init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}
