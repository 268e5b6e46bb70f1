import Logging

/// Everything a domain service needs to know about the call it serves, passed explicitly.
public struct RequestContext: Sendable {
    /// The caller.
    public var principal: Principal
    /// The caller's tenant; nil for operators.
    public var tenant: TenantRef?
    /// The id that ties log lines of one call together.
    public var requestID: String
    /// A logger carrying `request.id`, `tenant.id` and `rpc.method`.
    public var logger: Logger

    /// Creates a context.
    public init(principal: Principal, tenant: TenantRef?, requestID: String, logger: Logger) {
        self.principal = principal
        self.tenant = tenant
        self.requestID = requestID
        self.logger = logger
    }

    /// The tenant, or `permissionDenied` for a caller without one (an operator on a tenant RPC).
    public func requireTenant() throws(LinliError) -> TenantRef {
        guard let tenant else { throw LinliError(.permissionDenied, "this call needs a tenant user") }
        return tenant
    }
}

/// Log metadata keys, defined once.
public enum LogKey {
    public static let requestID = "request.id"
    public static let tenantID = "tenant.id"
    public static let method = "rpc.method"
    public static let status = "rpc.status"
    public static let durationMs = "rpc.duration_ms"
    public static let principal = "principal.id"
}

/// Metric names, defined once (OpenTelemetry style).
public enum MetricName {
    public static let rpcDuration = "rpc.server.duration"
    /// Time per stage of the request path (`Stage`), dimension `stage`.
    public static let stageDuration = "linli.stage.duration"
    public static let rpcRequests = "rpc.server.requests"
    public static let rateLimitFailOpen = "linli.ratelimit.fail_open"
    public static let rollupDeltas = "linli.rollup.deltas_folded"
    public static let serving = "linli.serving"
    public static let transactionTimeouts = "linli.db.transaction_timeouts"
    public static let storageUnavailable = "linli.db.unavailable"
    public static let redisErrors = "linli.redis.errors"
    public static let jobRuns = "linli.job.runs"
    public static let jobFailures = "linli.job.failures"
    public static let outboxBacklog = "linli.outbox.backlog"
    /// Device gateway: connections held, events stored, frames refused, devices gone offline.
    public static let deviceConnections = "linli.device.connections"
    public static let deviceEvents = "linli.device.events"
    public static let deviceRefusals = "linli.device.refusals"
    public static let devicesOffline = "linli.device.offline"
}
