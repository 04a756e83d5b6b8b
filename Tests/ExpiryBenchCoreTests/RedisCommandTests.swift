import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// The wire bytes of a command as text, for readable comparisons.
private func wire(_ command: RedisCommand) -> String {
    String(decoding: command.bytes, as: UTF8.self)
}

@Suite("RedisCommand and RedisCommandBuilder RESP2 encoding")
struct RedisCommandTests {
    // MARK: RedisCommand

    @Test func encodesSetAsRESP2Array() {
        let command = RedisCommand(["SET", "k", "v"])
        #expect(wire(command) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        #expect(command.bytes == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n".utf8))
    }

    @Test func variadicInitMatchesArrayInit() {
        let variadic = RedisCommand("XADD", "s", "*", "k", "12")
        let array = RedisCommand(["XADD", "s", "*", "k", "12"])
        #expect(variadic.bytes == array.bytes)
        #expect(wire(variadic) == "*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$1\r\nk\r\n$2\r\n12\r\n")
    }

    @Test func nameIsUppercasedButBytesKeepTheSpelling() {
        let command = RedisCommand("get", "user:1")
        #expect(command.name == "GET")
        #expect(wire(command) == "*2\r\n$3\r\nget\r\n$6\r\nuser:1\r\n")
    }

    @Test func descriptionShowsOnlyTheNameNeverArguments() {
        let command = RedisCommand(["AUTH", "alice", "hunter2"])
        #expect(command.description == "AUTH")
        #expect(!"\(command)".contains("hunter2"))
    }

    @Test func emptyCommand() {
        let command = RedisCommand([])
        #expect(command.name == "")
        #expect(wire(command) == "*0\r\n")
    }

    @Test func emptyArgumentIsAZeroLengthBulk() {
        #expect(wire(RedisCommand(["SET", "k", ""])) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n")
    }

    @Test func lengthsCountUTF8BytesNotCharacters() {
        let key = "clé"       // 3 characters, 4 bytes
        let value = "日本"    // 2 characters, 6 bytes
        let emoji = "👍🏽"     // 1 character, 8 bytes
        #expect(key.count == 3 && value.count == 2 && emoji.count == 1)
        let command = RedisCommand(["SET", key, value, emoji])
        #expect(wire(command) == "*4\r\n$3\r\nSET\r\n$4\r\nclé\r\n$6\r\n日本\r\n$8\r\n👍🏽\r\n")
    }

    @Test func argumentsAreBinarySafe() {
        let command = RedisCommand(["SET", "k", "a\r\nb"])
        #expect(wire(command) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n")
    }

    @Test func multiDigitCountsAndLengths() {
        let arguments = ["DEL"] + (0..<11).map { "key-\($0)" }
        let command = RedisCommand(arguments)
        #expect(wire(command).hasPrefix("*12\r\n$3\r\nDEL\r\n$5\r\nkey-0\r\n"))
        #expect(wire(command).hasSuffix("$6\r\nkey-10\r\n"))
        let long = String(repeating: "x", count: 1234)
        #expect(wire(RedisCommand(["SET", "k", long])).hasSuffix("$1234\r\n" + long + "\r\n"))
    }

    // MARK: appendDecimal

    @Test(arguments: [(0, "0"), (7, "7"), (10, "10"), (1234, "1234"), (-7, "-7"), (-1000, "-1000"),
                      (Int.max, "9223372036854775807")])
    func decimalDigits(value: Int, expected: String) {
        var out: [UInt8] = []
        RedisCommand.appendDecimal(&out, value)
        #expect(String(decoding: out, as: UTF8.self) == expected)
    }

    // MARK: RedisCommandBuilder

    @Test func builderWithStringAndIntegerArguments() {
        var builder = RedisCommandBuilder("EVALSHA")
        builder.append("abc123")
        builder.append(2)
        builder.append("k:1")
        builder.append(-42)
        builder.append(0)
        builder.append("naïve")  // 5 characters, 6 bytes
        let command = builder.build()
        #expect(command.name == "EVALSHA")
        #expect(wire(command) == "*7\r\n$7\r\nEVALSHA\r\n$6\r\nabc123\r\n$1\r\n2\r\n$3\r\nk:1\r\n$3\r\n-42\r\n$1\r\n0\r\n$6\r\nnaïve\r\n")
    }

    @Test func builderMatchesArrayEncoding() {
        var builder = RedisCommandBuilder("fcall", capacity: 8)
        let texts = ["publish", "3", "ns:run:k:17", "日本語", "", "-9", "1000000"]
        for text in texts { builder.append(text) }
        builder.append(-9)
        builder.append(1_000_000)
        let built = builder.build()
        let expected = RedisCommand(["fcall"] + texts + ["-9", "1000000"])
        #expect(built.bytes == expected.bytes)
        #expect(built.name == "FCALL")
    }

    @Test func integerArgumentsEqualTheirDecimalStrings() {
        for value in [0, 1, 9, 10, 99, 100, -1, -10, 65535, Int.max, -Int.max] {
            var viaInt = RedisCommandBuilder("ECHO")
            viaInt.append(value)
            var viaString = RedisCommandBuilder("ECHO")
            viaString.append(String(value))
            #expect(viaInt.build().bytes == viaString.build().bytes, "value \(value)")
        }
    }

    @Test func builderWithoutArguments() {
        #expect(wire(RedisCommandBuilder("PING").build()) == "*1\r\n$4\r\nPING\r\n")
    }

    @Test func builderWithManyArguments() {
        var builder = RedisCommandBuilder("SADD")
        for i in 0..<1000 { builder.append(i) }
        let text = wire(builder.build())
        #expect(text.hasPrefix("*1001\r\n$4\r\nSADD\r\n$1\r\n0\r\n"))
        #expect(text.hasSuffix("$3\r\n999\r\n"))
    }

    @Test func buildCanBeCalledRepeatedlyAndContinued() {
        var builder = RedisCommandBuilder("MGET")
        builder.append("a")
        let first = builder.build()
        builder.append("b")
        let second = builder.build()
        #expect(wire(first) == "*2\r\n$4\r\nMGET\r\n$1\r\na\r\n")
        #expect(wire(second) == "*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n")
    }

    @Test
    func builderWithIntMin() {
        var builder = RedisCommandBuilder("ECHO")
        builder.append(Int.min)
        #expect(wire(builder.build()) == "*2\r\n$4\r\nECHO\r\n$20\r\n-9223372036854775808\r\n")
    }
}
