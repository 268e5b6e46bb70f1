import Foundation
import LinliCore
import PostgresNIO

/// Creates tenants: registry row, NOLOGIN role, schema and every tenant migration, in one
/// transaction, so a tenant either exists completely or not at all.
public struct TenantProvisioner: Sendable {
    /// Runs the tenant migrations.
    public let runner: MigrationRunner

    /// Creates a provisioner.
    public init(runner: MigrationRunner) { self.runner = runner }

    /// A tenant as stored in the registry.
    public struct Tenant: Sendable {
        public var ref: TenantRef
        public var name: String
        public var plan: String
        public var createdAt: Date
        public var suspendedReason: String?
    }

    /// Provisions a tenant inside the caller's platform transaction.
    public func create(slug: String, name: String, plan: String, on connection: PostgresConnection) async throws -> Tenant {
        let ref = try TenantRef(id: .make(), slug: slug, isActive: true)
        let logger = runner.database.logger
        let exists = try await connection.query(
            "SELECT 1 FROM platform.tenants WHERE slug = \(slug) UNION ALL SELECT 1 FROM pg_roles WHERE rolname = \(ref.schema)",
            logger: logger)
        for try await _ in exists {
            throw LinliError(.alreadyExists, "slug: a tenant named \(slug) exists", field: "slug")
        }
        let rows = try await connection.query(
            """
            INSERT INTO platform.tenants (id, slug, name, status, plan) VALUES (\(ref.id.uuid), \(slug), \(name), 'active', \(plan))
            RETURNING created_at
            """, logger: logger)
        var createdAt = Date()
        for try await (at) in rows.decode(Date.self) { createdAt = at }
        // Identifier interpolation: `ref.schema` is `t_` + a slug validated by TenantRef.
        // PUBLIC has no rights on a new schema, and the application role (NOINHERIT) gets
        // none either: it reaches tenant tables only through SET LOCAL ROLE.
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(ref.schema) NOLOGIN"), logger: logger)
        try await connection.query(PostgresQuery(unsafeSQL: "GRANT \(ref.schema) TO CURRENT_USER"), logger: logger)
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(ref.schema) AUTHORIZATION \(ref.schema)"), logger: logger)
        _ = try await runner.applyTenantMigrations(ref, connection)
        try await connection.query(
            """
            INSERT INTO platform.rollup_state (tenant_id, folded_through) VALUES (\(ref.id.uuid), now())
            """, logger: logger)
        return Tenant(ref: ref, name: name, plan: plan, createdAt: createdAt, suspendedReason: nil)
    }

    /// Provisions a tenant in its own transaction.
    public func create(slug: String, name: String, plan: String = "standard") async throws(LinliError) -> Tenant {
        try await runner.database.platformTransaction { connection in
            try await create(slug: slug, name: name, plan: plan, on: connection)
        }
    }
}
