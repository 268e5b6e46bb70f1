/// A domain error: a code, a message that is safe to show a caller, and a cause kept for the logs.
///
/// Domain code throws these; the gRPC edge turns them into `RPCError` in one place.
public struct LinliError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, in the terms of the API contract.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Sendable {
            case invalidArgument, notFound, alreadyExists, failedPrecondition, permissionDenied
            case unauthenticated, resourceExhausted, unavailable, `internal`
        }
        let base: Base

        /// Bad input; the message names the field.
        public static let invalidArgument = Code(base: .invalidArgument)
        /// The addressed thing does not exist for this caller.
        public static let notFound = Code(base: .notFound)
        /// A thing with the same unique key exists.
        public static let alreadyExists = Code(base: .alreadyExists)
        /// The state does not allow it (or an idempotency key was reused with other input).
        public static let failedPrecondition = Code(base: .failedPrecondition)
        /// Authenticated, but not allowed.
        public static let permissionDenied = Code(base: .permissionDenied)
        /// No credentials, or expired or revoked ones.
        public static let unauthenticated = Code(base: .unauthenticated)
        /// A limit was hit; retry after `retryAfterMilliseconds`.
        public static let resourceExhausted = Code(base: .resourceExhausted)
        /// A backing store is down.
        public static let unavailable = Code(base: .unavailable)
        /// A bug or an unexpected storage failure; never shown in detail.
        public static let `internal` = Code(base: .internal)

        public var description: String { base.rawValue }
    }

    /// The error's code.
    public var code: Code
    /// A message safe for the caller: never SQL, stack traces or another tenant's data.
    public var message: String
    /// The request field at fault, for `invalidArgument`.
    public var field: String?
    /// For `resourceExhausted`: how long to wait before retrying.
    public var retryAfterMilliseconds: Int64?
    /// The underlying error, for logs only.
    public var cause: (any Error)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, field: String? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.cause = cause
    }

    /// Bad input in `field`.
    public static func invalid(_ field: String, _ problem: String) -> LinliError {
        LinliError(.invalidArgument, "\(field): \(problem)", field: field)
    }

    /// A thing the caller may not see or that does not exist; the two are not told apart.
    public static func notFound(_ what: String) -> LinliError {
        LinliError(.notFound, "\(what) not found")
    }

    /// An unexpected failure; the cause goes to the log only.
    public static func `internal`(_ cause: any Error) -> LinliError {
        LinliError(.internal, "internal error", cause: cause)
    }

    /// A rate limit was hit.
    public static func rateLimited(retryAfterMilliseconds: Int64) -> LinliError {
        var error = LinliError(.resourceExhausted, "rate limit exceeded; retry in \(retryAfterMilliseconds) ms")
        error.retryAfterMilliseconds = retryAfterMilliseconds
        return error
    }

    public var description: String {
        // Only code and safe message: `cause` may hold SQL.
        "LinliError(\(code)): \(message)"
    }
}
