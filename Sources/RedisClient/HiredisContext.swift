import CHiredis

/// The one owner of a hiredis `redisContext*`: connects, writes formatted commands, reads replies.
///
/// Every method blocks, so it is only ever called from the thread of the `ConnectionThread` that owns it,
/// never from Swift's cooperative pool. Not thread-safe and not `Sendable` on purpose.
final class HiredisContext {
    private var context: UnsafeMutablePointer<redisContext>?
    let endpoint: RedisEndpoint
    let clientName: String?

    init(endpoint: RedisEndpoint, clientName: String?) {
        self.endpoint = endpoint
        self.clientName = clientName
    }

    deinit { disconnect() }

    var isConnected: Bool { context != nil }

    /// Where the context is connected: the endpoint itself, or for a sentinel group the primary it found.
    private(set) var connected: RedisEndpoint?
    /// Where the context was last connected, kept after a disconnect: the server a failed call was meant for.
    private var lastConnected: RedisEndpoint?
    /// The server this context talks to, or last talked to, as `host:port` (for a sentinel group, its primary).
    var serverAddress: String { (connected ?? lastConnected ?? endpoint).addressDescription }
    /// For a sentinel group: the switches `SentinelWatch` had heard when this connection was made.
    private var sentinelGeneration: Int?

    /// True when the connection was made to a sentinel group's primary before the last `+switch-master`: the
    /// caller disconnects and connects again, to the primary the sentinels name now.
    var isStale: Bool {
        guard let sentinelGeneration, case .sentinel(let group) = endpoint.address else { return false }
        return SentinelWatch.shared.generation(of: group, tls: endpoint.tls) != sentinelGeneration
    }

    /// Opens the socket, then authenticates, selects the database and names the client. For a sentinel group,
    /// asks the sentinels for the primary first, and checks afterwards that the server there is a primary.
    func connect(timeoutMilliseconds: Int) throws {
        disconnect()
        var target = endpoint
        if case .sentinel(let group) = endpoint.address {
            sentinelGeneration = SentinelWatch.shared.generation(of: group, tls: endpoint.tls)
            let primary = try SentinelResolver.primary(of: group, tls: endpoint.tls, timeoutMilliseconds: timeoutMilliseconds)
            target = endpoint.at(host: primary.host, port: primary.port)
        }
        context = try open(target, timeoutMilliseconds: timeoutMilliseconds)
        connected = target
        lastConnected = target
        do {
            try startSession(at: target, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            disconnect()
            throw error
        }
    }

    /// The socket (or the TLS tunnel's end of it), checked: hiredis returns a context even when the connection
    /// failed, with the error inside it.
    private func open(_ target: RedisEndpoint, timeoutMilliseconds: Int) throws -> UnsafeMutablePointer<redisContext> {
        let tv = CHiredis_timeval(timeoutMilliseconds)
        let opened: UnsafeMutablePointer<redisContext>?
        switch target.address {
        case .tcp(let host, let port):
            if let tls = target.tls {
                opened = try TLSTunnel.connect(host: host, port: port, settings: tls, timeoutMilliseconds: timeoutMilliseconds,
                                               describing: target.addressDescription)
            } else {
                opened = redisConnectWithTimeout(host, Int32(port), tv)
            }
        case .unix(let path): opened = redisConnectUnixWithTimeout(path, tv)
        case .sentinel: opened = nil
        }
        guard let opened else { throw RedisError(.io, "cannot allocate a connection to \(target.addressDescription)") }
        if opened.pointee.err != 0 {
            let reason = String(cString: CHiredis_errstr(opened))
            redisFree(opened)
            let code: RedisError.Code = reason.localizedLowercase.contains("timed out") ? .timeout : .io
            throw RedisError(code, "cannot connect to \(target.addressDescription): \(reason)")
        }
        return opened
    }

    /// AUTH, SELECT, CLIENT SETNAME, and for a sentinel group's primary, ROLE.
    private func startSession(at target: RedisEndpoint, timeoutMilliseconds: Int) throws {
        if let password = endpoint.password {
            var auth = ["AUTH"]
            if let user = endpoint.username { auth.append(user) }
            auth.append(password)
            let reply = try roundTrip([RedisCommand(auth)], timeoutMilliseconds: timeoutMilliseconds)[0]
            try checkAccepted(reply)
            if case .error(let message) = reply {
                throw RedisError(.authentication, "authentication refused by \(endpoint.addressDescription): \(message)", serverMessage: message)
            }
        }
        if endpoint.database != 0 {
            let reply = try roundTrip([RedisCommand("SELECT", String(endpoint.database))], timeoutMilliseconds: timeoutMilliseconds)[0]
            try checkAccepted(reply)
            _ = try reply.unwrapped(for: "SELECT \(endpoint.database)")
        }
        if let clientName {
            // Best effort: a server that forbids CLIENT still serves the run; one at its client limit does not.
            try checkAccepted(try roundTrip([RedisCommand("CLIENT", "SETNAME", clientName)], timeoutMilliseconds: timeoutMilliseconds)[0])
        }
        if case .sentinel(let group) = endpoint.address {
            // Between a switch and the sentinels' reconfiguration, the address may still be a replica's. (A user
            // without ROLE, which is in @dangerous, is trusted to the sentinels' answer.)
            let reply = try roundTrip([RedisCommand("ROLE")], timeoutMilliseconds: timeoutMilliseconds)[0]
            let role = reply.array?.first?.string
            if case .error(let message) = reply, !message.hasPrefix("NOPERM") {
                throw RedisError(.server, "ROLE: \(message)", serverMessage: message)
            }
            if case .array = reply, role != "master" {
                throw RedisError(.io, "the sentinels name \(target.addressDescription) as the primary '\(group.master)', but it is a \(role ?? "server of unknown role") (a failover is under way)")
            }
        }
    }

    /// A server at `maxclients` accepts the socket, answers the first command with `-ERR max number of clients
    /// reached` and closes it: that is a refusal to say, not a connection that broke and may be tried again.
    private func checkAccepted(_ reply: RESPValue) throws {
        guard case .error(let message) = reply, RedisError.isClientLimit(message) else { return }
        throw RedisError(.server, "\(endpoint.addressDescription) refused the connection: \(message)", serverMessage: message)
    }

    func disconnect() {
        if let context { redisFree(context) }
        context = nil
        connected = nil
    }

    /// Writes all commands in one go, then reads exactly one reply per command, in order.
    /// Server error replies come back as `.error` values; only transport failures throw, and they
    /// leave the context disconnected.
    func roundTrip(_ commands: [RedisCommand], timeoutMilliseconds: Int) throws -> [RESPValue] {
        guard let context else { throw RedisError(.closed, "not connected to \(endpoint.addressDescription)") }
        for command in commands {
            let status = command.bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { chars in
                    redisAppendFormattedCommand(context, chars.baseAddress, chars.count)
                }
            }
            if status != REDIS_OK { throw failure("writing \(command.name)") }
        }
        var done: Int32 = 0
        while done == 0 {
            if redisBufferWrite(context, &done) != REDIS_OK { throw failure("writing \(commands.first?.name ?? "")") }
        }
        var replies: [RESPValue] = []
        replies.reserveCapacity(commands.count)
        let deadline = ContinuousClock.now + .milliseconds(timeoutMilliseconds)
        for command in commands {
            replies.append(try readReply(until: deadline, for: command.name))
        }
        return replies
    }

    /// Reads one reply that the server pushes without a request (pub/sub messages).
    /// Returns nil when nothing arrived within `waitMilliseconds`.
    func readPushed(waitMilliseconds: Int) throws -> RESPValue? {
        guard let context else { throw RedisError(.closed, "not connected to \(endpoint.addressDescription)") }
        if let buffered = try bufferedReply() { return buffered }
        let ready = CHiredis_waitReadable(context, Int32(waitMilliseconds))
        if ready < 0 { throw failure("waiting for a message") }
        if ready == 0 { return nil }
        if redisBufferRead(context) != REDIS_OK { throw failure("reading a message") }
        return try bufferedReply()
    }

    /// Writes commands without reading their replies (SUBSCRIBE, whose confirmations arrive as pushed messages).
    func write(_ commands: [RedisCommand]) throws {
        guard let context else { throw RedisError(.closed, "not connected to \(endpoint.addressDescription)") }
        for command in commands {
            let status = command.bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
            }
            if status != REDIS_OK { throw failure("writing \(command.name)") }
        }
        var done: Int32 = 0
        while done == 0 {
            if redisBufferWrite(context, &done) != REDIS_OK { throw failure("writing") }
        }
    }

    private func readReply(until deadline: ContinuousClock.Instant, for name: String) throws -> RESPValue {
        guard let context else { throw RedisError(.closed, "not connected") }
        while true {
            if let reply = try bufferedReply() { return reply }
            let remaining = deadline - ContinuousClock.now
            let milliseconds = max(0, remaining.milliseconds)
            let ready = CHiredis_waitReadable(context, Int32(clamping: milliseconds))
            if ready < 0 { throw failure("waiting for the reply to \(name)") }
            if ready == 0 {
                disconnect()
                throw RedisError(.timeout, "\(endpoint.addressDescription) did not answer \(name) within the timeout")
            }
            if redisBufferRead(context) != REDIS_OK { throw failure("reading the reply to \(name)") }
        }
    }

    private func bufferedReply() throws -> RESPValue? {
        guard let context else { throw RedisError(.closed, "not connected") }
        var reply: UnsafeMutablePointer<redisReply>?
        if CHiredis_replyFromReader(context, &reply) != REDIS_OK { throw failure("parsing a reply") }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return Self.convert(reply)
    }

    private func failure(_ doing: String) -> RedisError {
        var reason = "connection lost"
        var code = RedisError.Code.io
        if let context {
            reason = String(cString: CHiredis_errstr(context))
            if context.pointee.err == REDIS_ERR_PROTOCOL { code = .protocolViolation }
            if context.pointee.err == REDIS_ERR_EOF { reason = "the server closed the connection" }
        }
        disconnect()
        return RedisError(code, "\(endpoint.addressDescription): \(doing) failed: \(reason)")
    }

    static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STATUS: return .status(text(r))
        case REDIS_REPLY_ERROR: return .error(text(r))
        case REDIS_REPLY_INTEGER: return .integer(Int64(r.integer))
        case REDIS_REPLY_STRING: return .bulk(text(r))
        case REDIS_REPLY_ARRAY:
            var items: [RESPValue] = []
            items.reserveCapacity(Int(r.elements))
            for i in 0..<Int(r.elements) {
                if let element = r.element[i] { items.append(convert(element)) } else { items.append(.null) }
            }
            return .array(items)
        default: return .null
        }
    }

    private static func text(_ r: redisReply) -> String {
        guard let str = r.str else { return "" }
        return str.withMemoryRebound(to: UInt8.self, capacity: Int(r.len)) { bytes in
            String(decoding: UnsafeBufferPointer(start: bytes, count: Int(r.len)), as: UTF8.self)
        }
    }
}
