import Foundation
import LinliCore
import PostgresNIO

/// Creates tenants: registry row, NOLOGIN role, schema and every tenant migration, in one
/// transaction, so a tenant either exists completely or not at all.
///
/// PostgreSQL itself needs some 200 ms to run every tenant migration (measured with psql on
/// the same SQL), so a new tenant does not wait for it: `TenantSpareJob` keeps a few spare
/// schemas (`s_<random>`, each with its own role and every migration applied), and `create`
/// claims one and renames schema and role to `t_<slug>`, then applies whatever migration the
/// spare lacks. With no spare left it builds the schema from scratch, as before.
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
        let exists = try await connection.run(
            "SELECT 1 FROM platform.tenants WHERE slug = \(slug) UNION ALL SELECT 1 FROM pg_roles WHERE rolname = \(ref.schema)",
            logger: logger)
        for try await _ in exists {
            throw LinliError(.alreadyExists, "slug: a tenant named \(slug) exists", field: "slug")
        }
        let rows = try await connection.run(
            """
            INSERT INTO platform.tenants (id, slug, name, status, plan) VALUES (\(ref.id.uuid), \(slug), \(name), 'active', \(plan))
            RETURNING created_at
            """, logger: logger)
        var createdAt = Date()
        for try await (at) in rows.decode(Date.self) { createdAt = at }
        if let spare = try await claimSpare(on: connection) {
            try await connection.run(PostgresQuery(unsafeSQL: Self.renameSQL(spare: spare, to: ref.schema)), logger: logger)
            try await connection.run(
                "UPDATE platform.schema_migrations SET scope = \(ref.schema) WHERE scope = \(spare)", logger: logger)
        } else {
            try await createSchema(ref.schema, on: connection)
        }
        _ = try await runner.applyTenantMigrations(schema: ref.schema, connection)
        try await connection.run(
            """
            INSERT INTO platform.rollup_state (tenant_id, folded_through) VALUES (\(ref.id.uuid), now())
            """, logger: logger)
        return Tenant(ref: ref, name: name, plan: plan, createdAt: createdAt, suspendedReason: nil)
    }

    /// Role and schema `schema`, empty, owned by that role. The connection is retired after the
    /// transaction (`Database.retireConnection`): the schema's migrations follow.
    private func createSchema(_ schema: String, on connection: PostgresConnection) async throws {
        let logger = runner.database.logger
        Database.retireConnection()
        // Identifier interpolation: `schema` is `t_` + a slug validated by TenantRef, or a
        // spare's `s_` + 20 of [a-z0-9]. PUBLIC has no rights on a new schema, and the
        // application role (NOINHERIT) gets none either: it reaches tenant tables only
        // through SET LOCAL ROLE.
        try await connection.run(PostgresQuery(unsafeSQL: "CREATE ROLE \(schema) NOLOGIN"), logger: logger)
        try await connection.run(PostgresQuery(unsafeSQL: "GRANT \(schema) TO CURRENT_USER"), logger: logger)
        try await connection.run(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema) AUTHORIZATION \(schema)"), logger: logger)
    }

    /// The oldest spare schema, taken out of the pool (back in it if the caller's transaction rolls back).
    private func claimSpare(on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.run(
            """
            DELETE FROM platform.tenant_spares
            WHERE schema = (SELECT schema FROM platform.tenant_spares ORDER BY created_at, schema LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING schema
            """, logger: runner.database.logger)
        for try await schema in rows.decode(String.self) where Self.isSpareName(schema) { return schema }
        return nil
    }

    /// Renames a spare's schema and role to `schema`. Renaming a schema takes its owner and
    /// the database's CREATE right: the spare's role gets that right for the rename only.
    /// Grants change the database's one catalog row, so renames queue on an advisory lock
    /// held to commit (two open transactions changing that row would fail the second).
    static func renameSQL(spare: String, to schema: String) -> String {
        """
        DO $rename$
        BEGIN
            PERFORM pg_advisory_xact_lock(\(renameLock));
            EXECUTE format('GRANT CREATE ON DATABASE %I TO %I', current_database(), '\(spare)');
            SET LOCAL ROLE \(spare);
            ALTER SCHEMA \(spare) RENAME TO \(schema);
            SET LOCAL ROLE NONE;
            EXECUTE format('REVOKE CREATE ON DATABASE %I FROM %I', current_database(), '\(spare)');
            ALTER ROLE \(spare) RENAME TO \(schema);
        END
        $rename$
        """
    }

    static let renameLock: Int64 = 0x4C49_4E4C_4900_0002

    static func isSpareName(_ name: String) -> Bool {
        name.utf8.count == 22 && name.hasPrefix("s_") && name.utf8.dropFirst(2).allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) }
    }

    /// Spare schemas waiting in the pool.
    public func spares() async throws(LinliError) -> Int {
        try await runner.database.platformTransaction { connection in
            var count = 0
            for try await n in try await connection.run("SELECT count(*)::int FROM platform.tenant_spares", logger: runner.database.logger)
                .decode(Int.self)
            { count = n }
            return count
        }
    }

    /// Adds one spare schema to the pool: role, schema and every tenant migration, in one transaction.
    public func makeSpare() async throws(LinliError) {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        let schema = "s_" + String(decoding: (0..<20).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] }, as: UTF8.self)
        try await runner.database.platformTransaction { connection in
            try await createSchema(schema, on: connection)
            _ = try await runner.applyTenantMigrations(schema: schema, connection)
            try await connection.run("INSERT INTO platform.tenant_spares (schema) VALUES (\(schema))", logger: runner.database.logger)
        }
    }

    /// Provisions a tenant in its own transaction.
    public func create(slug: String, name: String, plan: String = "standard") async throws(LinliError) -> Tenant {
        try await runner.database.platformTransaction { connection in
            try await create(slug: slug, name: name, plan: plan, on: connection)
        }
    }
}
