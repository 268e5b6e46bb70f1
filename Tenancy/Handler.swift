import GRPCCore
import LinliCore
import Logging
import PostgresNIO
import SwiftProtobuf

/// What a handler's body works with: the caller, the open tenant transaction and a logger
/// carrying the call's request id, tenant and principal.
public struct Call: Sendable {
    public let principal: Principal
    public let tenant: TenantRef
    public let connection: PostgresConnection
    public let logger: Logger
}

/// The one path of a tenant RPC. A handler checks the shape of its input, then makes one call
/// here; this decodes the principal the admission interceptor put on the call (once per call),
/// opens the caller's tenant transaction, applies a write once per `request_id` (a retry gets
/// the first answer, the same id with other content is refused) and lets `LinliError` map to
/// the gRPC status (`RPCErrorConvertible`).
public struct Handler: Sendable {
    public let database: Database
    public let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// The caller of an admitted call, for the few handlers that need it outside a tenant transaction.
    public func context(_ metadata: Metadata) throws(LinliError) -> RequestContext {
        try RequestContext(admitted: metadata, logger: logger)
    }

    /// A call without a request id in the caller's tenant transaction: a read, or a change that is
    /// idempotent by nature (setting a flag).
    public func read<M, R: SwiftProtobuf.Message & Sendable>(
        _ request: ServerRequest<M>, _ body: (Call) async throws -> R
    ) async throws -> ServerResponse<R> {
        let ctx = try context(request.metadata)
        let tenant = try ctx.requireTenant()
        let response = try await database.tenantTransaction(tenant) { connection in
            try await body(Call(principal: ctx.principal, tenant: tenant, connection: connection, logger: ctx.logger))
        }
        return ServerResponse(message: response)
    }

    /// A write, applied once per `request_id`, named by its RPC method for the idempotency record.
    public func write<M: IdempotentRequest & Sendable, R: SwiftProtobuf.Message & Sendable>(
        _ request: ServerRequest<M>, _ rpc: ServerContext, _ body: (Call) async throws -> R
    ) async throws -> ServerResponse<R> {
        try await write(request.message, metadata: request.metadata, method: rpc.descriptor.method, body)
    }

    /// A write of a streamed request, once its messages are read into `message`.
    public func write<M: IdempotentRequest & Sendable, R: SwiftProtobuf.Message & Sendable>(
        _ message: M, metadata: Metadata, method: String, _ body: (Call) async throws -> R
    ) async throws -> ServerResponse<R> {
        let ctx = try context(metadata)
        let tenant = try ctx.requireTenant()
        let response = try await database.once(ctx, method, message) { connection in
            try await body(Call(principal: ctx.principal, tenant: tenant, connection: connection, logger: ctx.logger))
        }
        return ServerResponse(message: response)
    }
}
