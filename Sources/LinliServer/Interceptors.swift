import Foundation
import GRPCCore
import LinliCore
import LinliIdentity
import LinliTenancy
import Logging
import Metrics
import Synchronization

/// First in the chain: a request id, one structured log line per call, and metrics.
struct ObservabilityInterceptor: ServerInterceptor {
    let logger: Logger

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        var request = request
        let supplied = request.metadata[stringValues: "x-request-id"].first(where: { _ in true }) ?? ""
        let requestID =
            (1...64).contains(supplied.count) && supplied.allSatisfy({ $0.isASCII && !$0.isWhitespace })
            ? supplied : UUIDv7.make().uuidString.lowercased()
        request.metadata.removeAllValues(forKey: AdmittedCall.requestIDKey)
        request.metadata.addString(requestID, forKey: AdmittedCall.requestIDKey)
        let method = context.descriptor.fullyQualifiedMethod
        let start = ContinuousClock.now
        var status = "ok"
        defer {
            let elapsed = ContinuousClock.now - start
            let (timer, counter) = RPCMetrics.shared.handlers(method: method, status: status)
            timer.recordNanoseconds(elapsed.nanosecondsClamped)
            counter.increment()
            logger.debug(
                "rpc",
                metadata: [
                    LogKey.requestID: "\(requestID)", LogKey.method: "\(method)", LogKey.status: "\(status)",
                    LogKey.durationMs: "\(Double(elapsed.nanosecondsClamped) / 1e6)",
                ])
        }
        do {
            let response = try await next(request, context)
            if case .failure(let error) = response.accepted {
                status = "\(error.code)"
                if error.code == .internalError || error.code == .unknown {
                    logger.error("rpc failed", metadata: [LogKey.requestID: "\(requestID)", LogKey.method: "\(method)", "error": "\(error)"])
                }
            }
            return response
        } catch let error as LinliError {
            status = "\(error.rpcErrorCode)"
            if error.code == .internal || error.code == .unavailable {
                logger.error(
                    "rpc failed",
                    metadata: [
                        LogKey.requestID: "\(requestID)", LogKey.method: "\(method)",
                        "error.cause": "\(error.cause.map { "\($0)" } ?? error.message)",
                    ])
            }
            throw error
        } catch let error as RPCError {
            status = "\(error.code)"
            throw error
        } catch {
            status = "internal"
            logger.error("rpc failed", metadata: [LogKey.requestID: "\(requestID)", LogKey.method: "\(method)", "error.cause": "\(error)"])
            throw RPCError(code: .internalError, message: "internal error")
        }
    }
}

/// The duration timer and request counter of each method and status, made once: the
/// Prometheus factory checks and escapes names on every make, a cost on every call.
final class RPCMetrics: Sendable {
    static let shared = RPCMetrics()
    private let made = Mutex<[String: (Timer, Counter)]>([:])

    func handlers(method: String, status: String) -> (Timer, Counter) {
        let key = method + "|" + status
        if let hit = made.withLock({ $0[key] }) { return hit }
        let dimensions = [("rpc.method", method), ("rpc.status", status)]
        let pair = (Timer(label: MetricName.rpcDuration, dimensions: dimensions), Counter(label: MetricName.rpcRequests, dimensions: dimensions))
        made.withLock { $0[key] = $0[key] ?? pair }
        return pair
    }
}

/// Second: authenticates, rate-limits and authorizes every call by the one method table,
/// then hands the admitted principal to the handler in internal metadata.
struct AdmissionInterceptor: ServerInterceptor {
    let authenticator: Authenticator
    let limiter: RateLimiter

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        var request = request
        let method = context.descriptor.fullyQualifiedMethod
        guard let rule = MethodPolicy.rules[method] else {
            throw LinliError(.permissionDenied, "method is not open to callers")
        }
        // Only this interceptor may speak in internal metadata; what a client sent is dropped.
        let requestID = request.metadata[stringValues: AdmittedCall.requestIDKey].first(where: { _ in true }) ?? ""
        let clientKeys = request.metadata.compactMap { $0.key.hasPrefix(AdmittedCall.internalPrefix) ? $0.key : nil }
        for key in Set(clientKeys) { request.metadata.removeAllValues(forKey: key) }
        request.metadata.addString(requestID, forKey: AdmittedCall.requestIDKey)

        if rule.permission == .public {
            if let rateClass = rule.rateClass {
                try await limiter.check(rateClass, tenant: "anon", subject: Self.peerHost(context.remotePeer))
            }
            return try await next(request, context)
        }
        let admitting = ContinuousClock.now
        let (principal, tenant) = try await admit(request.metadata, rateClass: rule.rateClass, address: Self.peerHost(context.remotePeer))
        Stage.admit.record(since: admitting)
        guard rule.permission.isGranted(to: principal.role) else {
            throw LinliError(.permissionDenied, "your role may not call \(context.descriptor.method)")
        }
        request.metadata.addString(PrincipalCodec.encode(principal, issuedAt: Date()), forKey: AdmittedCall.principalKey)
        if let tenant { request.metadata.addString(tenant.slug, forKey: AdmittedCall.tenantKey) }
        return try await next(request, context)
    }

    /// The caller and its tenant, with a slot of `rateClass` taken for the caller.
    ///
    /// A session costs one Redis round trip: the session lookup and the rate-limit slot are one
    /// script (`SessionStore.admit`). Bad credentials are counted per address; past that budget
    /// a bad token or API key is refused as `resourceExhausted`, and an API key is refused
    /// before any lookup, so random keys cost Redis a peek, not PostgreSQL a query. A valid
    /// session passes even from an address over that budget: it guesses nothing.
    private func admit(_ metadata: Metadata, rateClass: RateClass?, address: String) async throws(LinliError) -> (Principal, TenantRef?) {
        if let token = Authenticator.bearerToken(metadata) {
            let admitted: (principal: Principal, tenant: TenantRef?, waitMicros: Int64)
            do {
                admitted = try await authenticator.admitSession(token) { tag in rateClass.flatMap { limiter.budget($0, tenant: tag) } }
            } catch  where error.code == .unauthenticated {
                try await limiter.check(.authfail, tenant: "anon", subject: address)
                throw error
            }
            if admitted.waitMicros > 0 { throw LinliError.rateLimited(retryAfterMilliseconds: max(1, (admitted.waitMicros + 999) / 1000)) }
            return (admitted.principal, admitted.tenant)
        }
        try await limiter.check(.authfail, tenant: "anon", subject: address, peek: true)
        let principal: Principal, tenant: TenantRef?
        do {
            (principal, tenant) = try await authenticator.authenticate(metadata)
        } catch  where error.code == .unauthenticated {
            try await limiter.check(.authfail, tenant: "anon", subject: address)
            throw error
        }
        if let rateClass {
            try await limiter.check(rateClass, tenant: SessionStore.tag(principal.tenantID), subject: principal.subjectID.description)
        }
        return (principal, tenant)
    }

    /// `ipv4:127.0.0.1:5000` → `127.0.0.1`.
    static func peerHost(_ peer: String) -> String {
        let parts = peer.split(separator: ":")
        guard parts.count >= 3 else { return peer }
        return parts.dropFirst().dropLast().joined(separator: ":")
    }
}
