/// A Redis reply.
public enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString([UInt8])
    case array([RESPValue])
    case null

    /// The reply as text, for status and bulk replies.
    public var string: String? {
        switch self {
        case .simpleString(let s): s
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The reply as an integer, for integer replies.
    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The elements of an array reply.
    public var array: [RESPValue]? {
        if case .array(let values) = self { return values }
        return nil
    }
}

/// A Redis failure: the server is unreachable, or it answered with an error.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    /// Whether the server could not be reached (as opposed to answering with an error).
    public let isUnavailable: Bool
    /// What happened.
    public let description: String

    static func unavailable(_ what: String) -> RedisError { RedisError(isUnavailable: true, description: what) }
    static func reply(_ what: String) -> RedisError { RedisError(isUnavailable: false, description: what) }
}
