import Foundation
import ExpiryPipeline
import RedisClient

/// The process exit codes (sysexits), as documented in README.md.
package enum ExitStatus: Int32, Sendable {
    case verified = 0
    case verificationFailed = 1
    case usage = 64
    case unavailable = 69
    case authentication = 77
    case configuration = 78
    /// `cleanup` could not remove every key of the run (the server refused the deletes): try again later
    /// (sysexits' EX_TEMPFAIL).
    case keysLeft = 75
    /// The run verified, but a `--threshold` failed (or `--abort-on-fail` stopped it): k6's code.
    case thresholdFailed = 99
    case interrupted = 130
}

/// A failure that ends the run before a verdict: one line for the user and the exit code that goes with it.
package struct RunError: Error, Sendable, CustomStringConvertible {
    package let status: ExitStatus
    package let message: String

    package init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    package var description: String { message }

    /// The exit code and wording for a Redis failure met while setting up.
    package init(_ error: RedisError, endpoint: RedisEndpoint) {
        let server = (error.serverMessage ?? error.message).trimmingCharacters(in: CharacterSet(charactersIn: ". "))
        switch error.code {
        case _ where error.permissionRefusal != nil:
            self.init(.authentication, Self.permissionMessage(error.permissionRefusal ?? server, endpoint: endpoint))
        case _ where error.isClientLimit:
            self.init(.configuration, Self.clientLimitMessage(endpoint, limit: nil, needed: nil))
        case _ where error.serverSays("NOAUTH"):
            self.init(.authentication, "Redis at \(endpoint.addressDescription) requires a password (\(server)): give it in --redis (redis://[user]:password@host:port), --password-file or REDIS_PASSWORD.")
        case .authentication:
            self.init(.authentication, "Redis at \(endpoint.addressDescription) refused the credentials (\(server)): check the user and password in --redis, --password-file or REDIS_PASSWORD.")
        case .io, .timeout, .closed:
            // A plain connection to a TLS port is reset at its first command, or never answered.
            let tlsPort = endpoint.tls == nil && (error.message.contains("reset by peer") || error.message.contains("closed the connection"))
            self.init(.unavailable, "cannot reach Redis at \(endpoint.addressDescription): \(error.message). "
                + (tlsPort ? "If that port speaks TLS, use rediss:// or --tls; otherwise start redis-server there, or pass --redis URL." : "Start redis-server there, or pass --redis URL (or --redis spawn for a private one)."))
        case .server where error.serverSays("NOAUTH") || error.serverSays("WRONGPASS"):
            self.init(.authentication, "Redis at \(endpoint.addressDescription) refused the command (\(server)): give a user allowed to run it in --redis.")
        case .server, .protocolViolation:
            self.init(.configuration, "Redis at \(endpoint.addressDescription) answered: \(error.message)")
        case .tls:
            self.init(.authentication, "\(error.message). \(Self.tlsAdvice(error.message))")
        }
    }

    /// One line for a write the server refused with an error reply, naming the cause as Redis gave it and what to
    /// do: a replica (`READONLY`), too few replicas for `min-replicas-to-write` (`NOREPLICAS`), memory full
    /// (`OOM`), a failed save (`MISCONF`). Exit 78, the server's configuration; a refused permission (`NOPERM`) is
    /// 77, as everywhere.
    /// - Parameters:
    ///   - writer: who wrote, for the wording ("the probe").
    ///   - policy: the server's `maxmemory-policy` when known: an `OOM` under a policy that evicts means eviction
    ///     could not free enough, not that nothing may be evicted.
    package static func writesRefused(_ reply: String, by writer: String, endpoint: RedisEndpoint, policy: String? = nil) -> RunError {
        if reply.hasPrefix("NOPERM") { return RunError(.authentication, permissionMessage(reply, endpoint: endpoint)) }
        let server = reply.trimmingCharacters(in: CharacterSet(charactersIn: ". "))
        let cause: String
        switch server.prefix(while: { $0 != " " }) {
        case "READONLY": cause = ": it is a read-only replica. Point --redis at its primary."
        case "NOREPLICAS": cause = ": it has fewer replicas in sync than its min-replicas-to-write. Bring its replicas back in sync, or lower min-replicas-to-write."
        case "OOM" where policy != nil && policy != "noeviction":
            cause = ": its memory is full, and maxmemory-policy \(policy ?? "") could not evict enough to make room. Raise maxmemory, or lower --max-outstanding."
        case "OOM": cause = ": its memory is full (maxmemory, with a policy that does not evict). Free memory or raise maxmemory."
        case "MISCONF": cause = ": its last save to disk failed and stop-writes-on-bgsave-error is on. Fix the server's disk or persistence settings."
        default: cause = "."
        }
        return RunError(.configuration, "Redis at \(endpoint.addressDescription) refused \(writer)'s writes (\(server))" + cause)
    }

    /// What to do about a TLS failure, from OpenSSL's and the certificate check's wording.
    static func tlsAdvice(_ message: String) -> String {
        if message.contains("cannot start") {
            return "Check that file: a PEM certificate or key that this user can read, and the key of that certificate."
        }
        // Before the CA and client-certificate advice: another CA, or --cert, would not mend a date.
        if message.contains("certificate has expired") || message.contains("certificate is not yet valid") {
            return "The server's certificate is outside its validity dates: renew it on the server (tls-cert-file), or correct the clock of whichever machine is wrong; --cacert or --insecure would not mend it."
        }
        if message.contains("alert certificate expired") {
            return "The server refused the client certificate as expired: renew the certificate given with --cert."
        }
        if message.contains("hostname mismatch") || message.contains("IP address mismatch") {
            return "The certificate names another host: connect by a name it lists, or give that name with --sni NAME."
        }
        if message.contains("certificate required") || message.contains("require a client certificate") || message.contains("handshake failure") || message.contains("unknown ca") || message.contains("bad certificate") {
            return "The server wants a client certificate it trusts (tls-auth-clients): give --cert FILE and --key FILE."
        }
        if message.contains("server's certificate was refused") {
            return "Give the CA that signed it with --cacert FILE (or --insecure to skip verification, never in production)."
        }
        if message.contains("wrong version number") || message.contains("packet length") {
            return "That port does not speak TLS: use redis:// without --tls, or the server's tls-port."
        }
        return "Check --cacert, --cert, --key and the server's tls-* settings."
    }

    /// What a run needs of a server's client slots, for the line of a server at its limit.
    package struct ClientNeed: Sendable, Equatable {
        /// Every connection the run opens (`PipelineParts.connectionCount`), and how many of them are consumers'.
        package var connections: Int
        package var consumers: Int
        package init(connections: Int, consumers: Int) {
            self.connections = connections
            self.consumers = consumers
        }
    }

    /// One line for a server that turns connections away at its client limit (`-ERR max number of clients
    /// reached`): the server, its `maxclients` when it could be read, what the run needs, and what to do.
    static func clientLimitMessage(_ endpoint: RedisEndpoint, limit: Int?, needed: ClientNeed?) -> String {
        let limitText = limit.map { "maxclients \($0)" } ?? "maxclients could not be read with CONFIG GET"
        let needText = needed.map { " This run needs \($0.connections) connections: \($0.consumers) for the consumers, \($0.connections - $0.consumers) for its other parts." } ?? ""
        return "Redis at \(endpoint.addressDescription) refused a connection: max number of clients reached (\(limitText)).\(needText) Raise maxclients on the server (CONFIG SET maxclients N, and in redis.conf), or run with fewer --consumers."
    }

    /// The same, found before the run started: the limit, the clients already connected, and at most how many
    /// consumers would fit.
    static func clientLimitMessage(_ endpoint: RedisEndpoint, limit: Int, connected: Int, needed: ClientNeed) -> String {
        let others = needed.connections - needed.consumers
        let fitting = max(0, limit - connected + 1 - others)
        let raise = needed.connections - 1 + connected
        return "Redis at \(endpoint.addressDescription) accepts at most \(limit) clients (maxclients) and \(connected) \(connected == 1 ? "is" : "are") connected, this tool's first among them; this run needs \(needed.connections) connections (\(needed.consumers) for the consumers, \(others) for its other parts). Raise maxclients to at least \(raise) (CONFIG SET maxclients \(raise), and in redis.conf)" + (fitting > 0 ? ", or run with --consumers \(fitting) or fewer." : ".")
    }

    /// One line for a NOPERM reply: the user's credentials were accepted, but it may not run a command, touch a
    /// key or use a channel; it names which and what to grant (README, "Safe on a real server", has the ACL).
    static func permissionMessage(_ server: String, endpoint: RedisEndpoint) -> String {
        let user = endpoint.username ?? "default"
        let grant: String
        if let command = server.split(separator: "'").dropFirst().first, server.contains("command") {
            // The run's protocol is Lua: a user refused one script command is refused them all.
            let scripting = command.hasPrefix("script") || command.hasPrefix("eval")
            // A transaction needs both ends.
            let transaction = command == "multi" || command == "exec"
            grant = "the command '\(command)': ACL SETUSER \(user) " + (scripting ? "+@scripting" : transaction ? "+multi +exec" : "+\(command)")
        } else if server.contains("key") {
            grant = "the run's keys: ACL SETUSER \(user) '~<namespace>:*' (expiry-bench:* by default)"
        } else if server.contains("channel") {
            grant = "the expired-event channel: ACL SETUSER \(user) '&__keyevent@*__:expired'"
        } else {
            grant = "what it names"
        }
        return "Redis at \(endpoint.addressDescription) accepted user '\(user)' but refused a permission (\(server)): grant \(grant), or run as a user who has it (README, \"Safe on a real server\", gives the smallest ACL)."
    }
}

/// The error replies by which a server refuses writes while it still answers reads and CONFIG: a replica
/// (`READONLY`), too few replicas for `min-replicas-to-write` (`NOREPLICAS`), memory full under `noeviction`
/// (`OOM`), a failed save with `stop-writes-on-bgsave-error` (`MISCONF`).
package enum WriteRefusal {
    static let prefixes = ["NOREPLICAS", "READONLY", "MISCONF", "OOM"]

    /// Whether an error reply is one of them.
    package static func isRefusal(_ reply: String) -> Bool {
        prefixes.contains { reply.hasPrefix($0 + " ") || reply == $0 }
    }

    /// The reply as Redis gave it, without the location Redis appends to an error raised inside a script
    /// (`… script: <sha>, on @user_script:29.`) and without the final period.
    package static func trimmed(_ reply: String) -> String {
        let text = reply.components(separatedBy: " script: ").first ?? reply
        return text.trimmingCharacters(in: CharacterSet(charactersIn: ". "))
    }

    /// The refusal an error carries (the server's reply, trimmed), or nil when it is not one.
    package static func of(_ error: any Error) -> String? {
        guard let error = error as? RedisError, error.code == .server else { return nil }
        let reply = error.serverMessage ?? error.message
        if isRefusal(reply) { return trimmed(reply) }
        // A script's or a pipeline's error carries the command's name before the reply ("script publish: NOREPLICAS …").
        guard let start = prefixes.compactMap({ error.message.range(of: $0 + " ")?.lowerBound }).min() else { return nil }
        return trimmed(String(error.message[start...]))
    }
}
