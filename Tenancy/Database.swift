import LinliCore
import Logging
import PostgresNIO

/// The PostgreSQL access every domain goes through: platform transactions as the application
/// role, and tenant transactions confined to one tenant's role and schema.
public struct Database: Sendable {
    /// The pooled client.
    public let client: PostgresClient
    /// The logger for storage events.
    public let logger: Logger

    /// Wraps a pooled client.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The first statement of a tenant transaction; $1 is the tenant's schema (and role).
    public static let tenantSwitchSQL = "SELECT set_config('role', $1, true), set_config('search_path', $1, true)"

    /// Runs `body` in a transaction as the application role, for `platform` tables.
    public func platformTransaction<R: Sendable>(
        _ body: (PostgresConnection) async throws -> R
    ) async throws(LinliError) -> R {
        try await transaction(setUp: nil, body)
    }

    /// Runs `body` in a transaction confined to `tenant`: the first statement switches to the
    /// tenant's role and schema for this transaction only (`set_config(..., true)` is
    /// `SET LOCAL`), so pooled connections keep no state and SQL naming another tenant's
    /// schema is refused by PostgreSQL itself.
    public func tenantTransaction<R: Sendable>(
        _ tenant: TenantRef,
        _ body: (PostgresConnection) async throws -> R
    ) async throws(LinliError) -> R {
        try await transaction(setUp: tenant.schema, body)
    }

    private func transaction<R: Sendable>(
        setUp schema: String?,
        _ body: (PostgresConnection) async throws -> R
    ) async throws(LinliError) -> R {
        do {
            return try await client.withConnection { connection in
                try await connection.query("BEGIN", logger: logger)
                do {
                    if let schema {
                        for try await _ in try await connection.execute(TenantSwitch(schema: schema), logger: logger) {}
                    }
                    let result = try await body(connection)
                    try await connection.query("COMMIT", logger: logger)
                    return result
                } catch {
                    // A failed ROLLBACK means the connection is broken; the pool drops it.
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        } catch {
            let mapped = Database.map(error)
            // The gRPC layer keeps only the safe message, so the cause is logged here.
            if mapped.code == .internal || mapped.code == .unavailable {
                logger.error("transaction failed", metadata: ["error.code": "\(mapped.code)", "error.cause": "\(String(reflecting: error))"])
            }
            throw mapped
        }
    }

    /// Turns a storage error into a domain error that leaks nothing.
    public static func map(_ error: any Error) -> LinliError {
        if let error = error as? LinliError { return error }
        if let psql = error as? PSQLError {
            switch psql.code {
            case .server:
                let state = psql.serverInfo?[.sqlState] ?? ""
                if state == "42501" { return LinliError(.permissionDenied, "permission denied", cause: error) }
                if state == "40001" || state == "40P01" {
                    return LinliError(.unavailable, "conflicting concurrent change; retry", cause: error)
                }
                if state.hasPrefix("57") || state.hasPrefix("53") || state.hasPrefix("08") {
                    return LinliError(.unavailable, "database unavailable", cause: error)
                }
                return .internal(error)
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed,
                 .sslUnsupported:
                return LinliError(.unavailable, "database unavailable", cause: error)
            default:
                return .internal(error)
            }
        }
        if error is CancellationError { return LinliError(.unavailable, "cancelled", cause: error) }
        return .internal(error)
    }

    /// The SQLSTATE of a server error, if `error` is one.
    public static func sqlState(_ error: any Error) -> String? {
        var current: (any Error)? = error
        if let linli = error as? LinliError { current = linli.cause }
        guard let psql = current as? PSQLError, psql.code == .server else { return nil }
        return psql.serverInfo?[.sqlState]
    }
}

/// The first statement of every tenant transaction, prepared once per connection.
struct TenantSwitch: PostgresPreparedStatement {
    static let sql = Database.tenantSwitchSQL
    typealias Row = (String, String)

    let schema: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(schema)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
