/// A failure talking to Redis, with a code a caller can switch on and a message a user can act on.
package struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Each kind needs a different reaction.
    package enum Code: Sendable, Equatable {
        /// The server could not be reached, or the connection broke (the socket failed).
        case io
        /// The server did not answer within the allowed time.
        case timeout
        /// The server answered with an `-ERR`-style reply.
        case server
        /// The server refused our credentials, or requires some.
        case authentication
        /// The reply could not be parsed, or had an unexpected shape.
        case protocolViolation
        /// The connection was closed by us.
        case closed
        /// TLS could not be set up: a certificate refused (the server's or ours), a port that does not speak TLS,
        /// or a CA, certificate or key file that cannot be used. Trying again will not help.
        case tls
    }

    package let code: Code
    package let message: String
    /// The raw server error text, for `.server` and `.authentication`.
    package let serverMessage: String?

    package init(_ code: Code, _ message: String, serverMessage: String? = nil) {
        self.code = code
        self.message = message
        self.serverMessage = serverMessage
    }

    package var description: String { message }

    /// True when the server's error reply starts with the given prefix (`NOSCRIPT`, `BUSYGROUP`, `NOPERM`, ...).
    package func serverSays(_ prefix: String) -> Bool {
        serverMessage?.hasPrefix(prefix) ?? false
    }

    /// The ACL refusal this error is, or carries: `NOPERM ...` itself, or the cause of an `EXECABORT` (a
    /// transaction discarded because a command in it, or EXEC, was refused). Nil for any other error.
    package var permissionRefusal: String? {
        guard let serverMessage else { return nil }
        if serverMessage.hasPrefix("NOPERM") { return serverMessage }
        guard serverMessage.hasPrefix("EXECABORT"), let cause = serverMessage.range(of: "NOPERM") else { return nil }
        return String(serverMessage[cause.lowerBound...])
    }

    /// True when the server turned the connection away because it already serves `maxclients` clients.
    package var isClientLimit: Bool { serverMessage.map(Self.isClientLimit) ?? false }

    /// The same, for an error reply's text.
    package static func isClientLimit(_ message: String) -> Bool {
        message.contains("max number of clients reached")
    }

    /// True for a failure that the same call may not meet if tried again shortly: a broken connection, or a
    /// server that is still loading its data after a restart (LOADING), busy with a script (BUSY), between
    /// roles (MASTERDOWN, TRYAGAIN), or a cluster waiting for a failover to end (CLUSTERDOWN).
    package var isTransient: Bool {
        breaksConnection || (serverMessage.map(Self.isTransient) ?? false)
    }

    /// The same, for an error reply's text.
    static func isTransient(_ message: String) -> Bool {
        isRoleChange(message) || ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"].contains { message.hasPrefix($0) }
    }

    /// True when the server stopped being a primary under us (a failover): `READONLY` to a write, `UNBLOCKED` to a
    /// blocked XREADGROUP. The command did not run; the connection is reopened to the current primary and the call
    /// tried again there (every step of the run is safe to repeat).
    package var isRoleChange: Bool { serverMessage.map(Self.isRoleChange) ?? false }

    /// The same, for an error reply's text.
    static func isRoleChange(_ message: String) -> Bool {
        message.hasPrefix("READONLY") || message.hasPrefix("UNBLOCKED")
    }

    /// The cluster redirect (`MOVED`/`ASK`) this server error carries, if it is one.
    package var redirect: ClusterRedirect? {
        serverMessage.flatMap(ClusterRedirect.parse)
    }

    /// True when the connection can no longer be used and must be reopened.
    package var breaksConnection: Bool {
        code == .io || code == .timeout || code == .protocolViolation || code == .closed
    }
}

extension RedisError {
    /// True when the run's keys are gone: a run script's `GONE` (it found one of its keys missing and wrote
    /// nothing), or `NOGROUP` (the stream or its group is gone). The run was removed, or Redis lost its data.
    package var isRunGone: Bool { serverSays("GONE") || serverSays("NOGROUP") }
}
