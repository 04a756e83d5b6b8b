import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

@Suite("RESPValue accessors and Redis errors")
struct RESPValueTests {
    // MARK: int

    @Test func intFromIntegerBulkAndStatus() {
        #expect(RESPValue.integer(42).int == 42)
        #expect(RESPValue.integer(-7).int == -7)
        #expect(RESPValue.bulk("17").int == 17)
        #expect(RESPValue.bulk("-3").int == -3)
        #expect(RESPValue.status("5").int == 5)
    }

    @Test func intIsNilForNonNumbers() {
        #expect(RESPValue.bulk("x").int == nil)
        #expect(RESPValue.bulk("1.5").int == nil)
        #expect(RESPValue.bulk("").int == nil)
        #expect(RESPValue.status("OK").int == nil)
        #expect(RESPValue.null.int == nil)
        #expect(RESPValue.error("ERR 1").int == nil)
        #expect(RESPValue.array([.integer(1)]).int == nil)
    }

    // MARK: string

    @Test func stringFromBulkStatusAndInteger() {
        #expect(RESPValue.bulk("hello").string == "hello")
        #expect(RESPValue.bulk("").string == "")
        #expect(RESPValue.status("OK").string == "OK")
        #expect(RESPValue.integer(-3).string == "-3")
        #expect(RESPValue.integer(1_000_000).string == "1000000")
    }

    @Test func stringIsNilForNullErrorAndArray() {
        #expect(RESPValue.null.string == nil)
        #expect(RESPValue.error("ERR boom").string == nil)
        #expect(RESPValue.array([.bulk("a")]).string == nil)
    }

    // MARK: array and isNull

    @Test func arrayElements() {
        let reply = RESPValue.array([.bulk("a"), .integer(2), .null, .array([])])
        #expect(reply.array == [.bulk("a"), .integer(2), .null, .array([])])
        #expect(reply.array?.count == 4)
        #expect(RESPValue.array([]).array == [])
    }

    @Test func arrayIsNilForNonArrays() {
        #expect(RESPValue.null.array == nil)
        #expect(RESPValue.bulk("a").array == nil)
        #expect(RESPValue.integer(1).array == nil)
        #expect(RESPValue.status("OK").array == nil)
    }

    @Test func isNullOnlyForNull() {
        #expect(RESPValue.null.isNull)
        #expect(!RESPValue.bulk("").isNull)
        #expect(!RESPValue.array([]).isNull)
        #expect(!RESPValue.integer(0).isNull)
        #expect(!RESPValue.status("").isNull)
        #expect(!RESPValue.error("").isNull)
    }

    // MARK: unwrapped

    @Test func unwrappedPassesNonErrorsThrough() throws {
        for value: RESPValue in [.status("OK"), .bulk("x"), .integer(3), .null, .array([.error("ERR inner")])] {
            #expect(try value.unwrapped(for: "GET") == value)
        }
    }

    @Test func unwrappedThrowsServerError() {
        let error = #expect(throws: RedisError.self) {
            try RESPValue.error("WRONGTYPE Operation against a key holding the wrong kind of value").unwrapped(for: "INCR")
        }
        #expect(error?.code == .server)
        #expect(error?.serverMessage == "WRONGTYPE Operation against a key holding the wrong kind of value")
        #expect(error?.message == "INCR: WRONGTYPE Operation against a key holding the wrong kind of value")
        #expect(error?.description == error?.message)
        #expect(error?.serverSays("WRONGTYPE") == true)
        #expect(error?.serverSays("NOSCRIPT") == false)
        #expect(error?.breaksConnection == false)
    }

    // MARK: RedisError

    @Test func connectionBreakingCodes() {
        #expect(RedisError(.io, "reset").breaksConnection)
        #expect(RedisError(.timeout, "slow").breaksConnection)
        #expect(RedisError(.protocolViolation, "garbage").breaksConnection)
        #expect(RedisError(.closed, "closed").breaksConnection)
        #expect(!RedisError(.server, "ERR").breaksConnection)
        #expect(!RedisError(.authentication, "WRONGPASS").breaksConnection)
    }

    @Test func serverSaysNeedsAServerMessage() {
        #expect(!RedisError(.io, "NOSCRIPT in the message only").serverSays("NOSCRIPT"))
        #expect(RedisError(.server, "EVALSHA: NOSCRIPT", serverMessage: "NOSCRIPT No matching script").serverSays("NOSCRIPT"))
    }

    // MARK: RunError from RedisError

    @Test func runErrorStatusForEachKindOfFailure() {
        let endpoint = RedisEndpoint(address: .tcp(host: "db", port: 6390), username: "u", password: "hunter2")
        let cases: [(RedisError, ExpiryBenchCore.ExitStatus)] = [
            (RedisError(.authentication, "WRONGPASS invalid username-password pair"), .authentication),
            (RedisError(.io, "Connection refused"), .unavailable),
            (RedisError(.timeout, "timed out"), .unavailable),
            (RedisError(.closed, "closed"), .unavailable),
            (RedisError(.server, "PING: NOAUTH Authentication required.", serverMessage: "NOAUTH Authentication required."), .authentication),
            (RedisError(.server, "X: NOPERM no permission", serverMessage: "NOPERM no permission"), .authentication),
            (RedisError(.server, "CONFIG: ERR unknown command", serverMessage: "ERR unknown command"), .configuration),
            (RedisError(.protocolViolation, "bad reply"), .configuration),
        ]
        for (redisError, status) in cases {
            let runError = RunError(redisError, endpoint: endpoint)
            #expect(runError.status == status, "\(redisError.message)")
            #expect(!runError.message.contains("hunter2"))
        }
    }

    @Test func unreachableServerNamesTheAddress() {
        let endpoint = RedisEndpoint(address: .tcp(host: "10.0.0.5", port: 6380))
        let runError = RunError(RedisError(.io, "Connection refused"), endpoint: endpoint)
        #expect(runError.status.rawValue == 69)
        #expect(runError.message.hasPrefix("cannot reach Redis at 10.0.0.5:6380: Connection refused."))
    }
}
