import Foundation
import GRPCCore
import Logging

extension LinliError: RPCErrorConvertible {
    /// The gRPC status for this error: the one mapping from domain errors to the wire.
    public var rpcErrorCode: RPCError.Code {
        switch code.base {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .failedPrecondition: .failedPrecondition
        case .permissionDenied: .permissionDenied
        case .unauthenticated: .unauthenticated
        case .resourceExhausted: .resourceExhausted
        case .unavailable: .unavailable
        case .internal: .internalError
        }
    }

    /// The caller-safe message; internal details stay in the log.
    public var rpcErrorMessage: String { message }

    /// For rate limits, the retry delay in `retry-after-ms`; for bad input, the field in `invalid-field`.
    public var rpcErrorMetadata: Metadata {
        var metadata: Metadata = [:]
        if let retry = retryAfterMilliseconds { metadata.addString(String(retry), forKey: "retry-after-ms") }
        if let field { metadata.addString(field, forKey: "invalid-field") }
        return metadata
    }
}

/// The metadata through which the admission interceptor hands an admitted call to its handler.
///
/// grpc-swift-2 interceptors cannot pass typed values to handlers except through task-locals,
/// which DESIGN.md rules out (a streaming body runs after the chain returns). So the
/// interceptor strips any client-sent `x-linli-internal-*` entries and writes these.
public enum AdmittedCall {
    /// The encoded principal.
    public static let principalKey = "x-linli-internal-principal"
    /// The tenant slug.
    public static let tenantKey = "x-linli-internal-tenant"
    /// The request id for logs.
    public static let requestIDKey = "x-linli-internal-request-id"
    /// Prefix of every internal key.
    public static let internalPrefix = "x-linli-internal-"
}

extension RequestContext {
    /// The context of a call the admission interceptor let through.
    public init(admitted metadata: Metadata, logger base: Logger) throws(LinliError) {
        guard let encoded = metadata[stringValues: AdmittedCall.principalKey].first(where: { _ in true }),
            let (principal, _) = PrincipalCodec.decode(encoded)
        else {
            throw LinliError(.unauthenticated, "missing credentials")
        }
        var tenant: TenantRef?
        if let tenantID = principal.tenantID {
            let slug = metadata[stringValues: AdmittedCall.tenantKey].first(where: { _ in true }) ?? ""
            tenant = try TenantRef(id: tenantID, slug: slug, isActive: true)
        }
        let requestID = metadata[stringValues: AdmittedCall.requestIDKey].first(where: { _ in true }) ?? ""
        var logger = base
        logger[metadataKey: LogKey.requestID] = "\(requestID)"
        logger[metadataKey: LogKey.principal] = "\(principal.subjectID)"
        if let tenantID = principal.tenantID { logger[metadataKey: LogKey.tenantID] = "\(tenantID)" }
        self.init(principal: principal, tenant: tenant, requestID: requestID, logger: logger)
    }
}
