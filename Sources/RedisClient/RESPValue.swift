/// One RESP2 reply, copied out of hiredis into Swift values.
///
/// RESP2 has exactly six kinds of reply; hiredis 0.14 speaks nothing newer.
package enum RESPValue: Sendable, Equatable {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk(String)
    case null
    case array([RESPValue])

    /// The reply as an integer: an integer reply, or a bulk/status string holding one.
    package var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulk(let text), .status(let text): return Int64(text)
        default: return nil
        }
    }

    /// The reply as text: a bulk string, a status, or an integer's decimal form.
    package var string: String? {
        switch self {
        case .bulk(let text), .status(let text): return text
        case .integer(let value): return String(value)
        default: return nil
        }
    }

    /// The elements of an array reply; `nil` for anything else (including a nil array).
    package var array: [RESPValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// A flat array of alternating names and values (HGETALL, HELLO, CONFIG GET) as a dictionary; pairs whose
    /// name or value is not text are left out, and so is everything for a reply that is not an array.
    package var fieldMap: [String: String] {
        let items = array ?? []
        var fields: [String: String] = [:]
        for index in stride(from: 0, to: items.count - 1, by: 2) {
            if let name = items[index].string, let value = items[index + 1].string { fields[name] = value }
        }
        return fields
    }

    /// True for a nil bulk string or nil array.
    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The reply, or a `RedisError.server` if the server answered with an error.
    package func unwrapped(for command: String) throws -> RESPValue {
        if case .error(let message) = self {
            throw RedisError(.server, "\(command): \(message)", serverMessage: message)
        }
        return self
    }
}
