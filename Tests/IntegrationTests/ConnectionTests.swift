import Foundation
import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

/// `RedisConnection` against a real `redis-server`: round trips, pipelines, error replies, failures to connect,
/// authentication, reconnection after the server drops the client, and many concurrent callers.
@Suite(.serialized)
struct ConnectionTests {
    @Test func pingAnswersPong() async throws {
        try await withRedis { server in
            let connection = try await connect(server)
            defer { connection.close() }
            #expect(try await connection.send("PING") == .status("PONG"))
            #expect(try await connection.send("ECHO", "héllo wörld\r\n") == .bulk("héllo wörld\r\n"))
            #expect(connection.reconnectCount == 0)
        }
    }

    @Test func pipelineOfAThousandCommandsReturnsEveryReplyInOrder() async throws {
        try await withRedis { server in
            let connection = try await connect(server)
            defer { connection.close() }
            let commands = (0..<1000).map { _ in RedisCommand("INCR", "itest:counter") }
            let replies = try await connection.pipeline(commands)
            #expect(replies.count == 1000)
            #expect(replies == (1...1000).map { RESPValue.integer(Int64($0)) })
            #expect(try await connection.send("GET", "itest:counter") == .bulk("1000"))
        }
    }

    @Test func errorReplyInsidePipelineIsReturnedInPlace() async throws {
        try await withRedis { server in
            let connection = try await connect(server)
            defer { connection.close() }
            let replies = try await connection.pipeline([
                RedisCommand("SET", "itest:text", "not a number"),
                RedisCommand("INCR", "itest:text"),
                RedisCommand("NOSUCHCOMMAND", "x"),
                RedisCommand("GET", "itest:text"),
                RedisCommand("INCR", "itest:n"),
            ])
            try #require(replies.count == 5)
            #expect(replies[0] == .status("OK"))
            guard case .error(let message) = replies[1] else {
                Issue.record("INCR on a string should be an error reply, got \(replies[1])")
                return
            }
            #expect(message.hasPrefix("ERR"))
            guard case .error(let unknown) = replies[2] else {
                Issue.record("an unknown command should be an error reply, got \(replies[2])")
                return
            }
            #expect(unknown.localizedLowercase.contains("unknown command"))
            #expect(replies[3] == .bulk("not a number"))
            #expect(replies[4] == .integer(1))
            // The connection is still usable, and `send` turns an error reply into RedisError(.server).
            let error = await #expect(throws: RedisError.self) { try await connection.send("INCR", "itest:text") }
            #expect(error?.code == .server)
            #expect(error?.serverMessage?.hasPrefix("ERR") == true)
            #expect(try await connection.send("PING") == .status("PONG"))
            #expect(connection.reconnectCount == 0)
        }
    }

    @Test func connectingWhereNothingListensThrowsIO() async throws {
        let port = try EmbeddedRedis.freePort()
        let endpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port))
        let error = await #expect(throws: RedisError.self) {
            let connection = try await RedisConnection.connect(to: endpoint, name: "itest", timeout: .seconds(2))
            connection.close()
        }
        #expect(error?.code == .io)
        #expect(error?.message.contains("127.0.0.1:\(port)") == true)
    }

    @Test func wrongPasswordThrowsAuthenticationWithoutThePassword() async throws {
        try await withRedis(extraArguments: ["--requirepass", "secret"]) { server in
            let wrong = "hunter2-wrong-Zq81"
            for username in [nil, "default"] as [String?] {
                let error = await #expect(throws: RedisError.self) {
                    let connection = try await RedisConnection.connect(to: endpoint(server, username: username, password: wrong), name: "itest")
                    connection.close()
                }
                #expect(error?.code == .authentication)
                let texts = [error?.message, error?.description, error?.serverMessage, error.map { "\($0)" }, error.map { String(reflecting: $0) }]
                for text in texts.compactMap({ $0 }) {
                    #expect(!text.contains(wrong), "the error text shows the password: \(text)")
                    #expect(!text.contains("secret"), "the error text shows the server's password: \(text)")
                }
            }
            // The right password works, and its connection can run commands.
            let connection = try await RedisConnection.connect(to: endpoint(server, password: "secret"), name: "itest")
            defer { connection.close() }
            #expect(try await connection.send("PING") == .status("PONG"))
        }
    }

    @Test func killedConnectionReconnectsOnTheNextCall() async throws {
        try await withRedis(extraArguments: ["--requirepass", "secret"]) { server in
            // With a password, so that the reconnection has to authenticate again too.
            let victim = try await RedisConnection.connect(to: endpoint(server, password: "secret"), name: "itest-victim")
            defer { victim.close() }
            let killer = try await RedisConnection.connect(to: endpoint(server, password: "secret"), name: "itest-killer")
            defer { killer.close() }
            let idBefore = try #require(try await victim.send("CLIENT", "ID").int)
            #expect(victim.reconnectCount == 0)

            // SKIPME yes (the default): the killer survives, every other normal client is dropped.
            let killed = try #require(try await killer.send("CLIENT", "KILL", "TYPE", "normal").int)
            #expect(killed >= 1)

            // The first call may fail (it was in flight on the dead socket); if so, it must be a transport error
            // and the call after it must succeed on a new connection.
            do {
                #expect(try await victim.send("PING") == .status("PONG"))
            } catch let error as RedisError {
                #expect(error.breaksConnection, "unexpected error after CLIENT KILL: \(error)")
                #expect(try await victim.send("PING") == .status("PONG"))
            }
            #expect(victim.reconnectCount >= 1)
            let idAfter = try #require(try await victim.send("CLIENT", "ID").int)
            #expect(idAfter != idBefore)
            // The reconnection authenticated and named the client again.
            #expect(try await victim.send("CLIENT", "GETNAME") == .bulk("itest-victim"))
            #expect(try await killer.send("PING") == .status("PONG"))
            #expect(killer.reconnectCount == 0)
        }
    }

    @Test func slowReplyTimesOutAndTheNextCallReconnects() async throws {
        try await withRedis { server in
            let connection = try await connect(server, timeout: .milliseconds(300))
            defer { connection.close() }
            let clock = ContinuousClock()
            let start = clock.now
            // BLPOP on an empty list blocks for 3 s: longer than the connection's 300 ms timeout.
            let error = await #expect(throws: RedisError.self) { try await connection.send("BLPOP", "itest:empty", "3") }
            #expect(error?.code == .timeout)
            #expect(clock.now - start < .seconds(2))
            #expect(try await connection.send("PING") == .status("PONG"))
            #expect(connection.reconnectCount == 1)
        }
    }

    @Test func closedConnectionRefusesCalls() async throws {
        try await withRedis { server in
            let connection = try await connect(server)
            connection.close()
            let error = await #expect(throws: RedisError.self) { try await connection.send("PING") }
            #expect(error?.code == .closed)
        }
    }

    @Test func concurrentCallersEachGetTheirOwnReplies() async throws {
        try await withRedis { server in
            let connection = try await connect(server)
            defer { connection.close() }
            let tasks = 50
            let calls = 100
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for task in 0..<tasks {
                    group.addTask {
                        var wrong = 0
                        for call in 0..<calls {
                            let payload = "task-\(task)-call-\(call)"
                            if call.isMultiple(of: 2) {
                                if try await connection.send("ECHO", payload) != .bulk(payload) { wrong += 1 }
                            } else {
                                let replies = try await connection.pipeline([
                                    RedisCommand("ECHO", payload), RedisCommand("INCR", "itest:task:\(task)"),
                                ])
                                if replies != [.bulk(payload), .integer(Int64(call / 2 + 1))] { wrong += 1 }
                            }
                        }
                        return wrong
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
            for task in 0..<tasks {
                #expect(try await connection.send("GET", "itest:task:\(task)") == .bulk(String(calls / 2)))
            }
            #expect(connection.reconnectCount == 0)
        }
    }
}
