import Foundation
import LinliCore
import Logging
import PostgresNIO

/// Applies the platform migrations and then every tenant schema's pending migrations.
///
/// Every migration is recorded in `platform.schema_migrations` with its checksum in the same
/// transaction that applies it, under an advisory lock, so two runners never apply the same
/// migration and a crash leaves each schema at a recorded version: running again resumes.
public struct MigrationRunner: Sendable {
    /// Storage.
    public let database: Database
    /// The migrations to apply.
    public let catalog: MigrationCatalog
    /// How many tenant schemas are migrated at once.
    public let parallelism: Int

    /// What a tenant run did.
    public struct Report: Sendable, Equatable {
        /// Tenant schemas that received at least one migration.
        public var tenantsMigrated = 0
        /// Migrations applied over all tenants.
        public var migrationsApplied = 0

        public init(tenantsMigrated: Int = 0, migrationsApplied: Int = 0) {
            self.tenantsMigrated = tenantsMigrated
            self.migrationsApplied = migrationsApplied
        }
    }

    /// Creates a runner.
    public init(database: Database, catalog: MigrationCatalog, parallelism: Int = 4) {
        self.database = database
        self.catalog = catalog
        self.parallelism = max(1, parallelism)
    }

    static let platformLock: Int64 = 0x4C49_4E4C_4900_0001

    /// Brings the `platform` schema up to date.
    public func migratePlatform() async throws(LinliError) {
        for migration in catalog.platform {
            try await database.platformTransaction { connection in
                try await connection.run("SELECT pg_advisory_xact_lock(\(Self.platformLock))", logger: database.logger)
                try await connection.run("CREATE SCHEMA IF NOT EXISTS platform", logger: database.logger)
                try await connection.run(
                    """
                    CREATE TABLE IF NOT EXISTS platform.schema_migrations (
                        scope text NOT NULL, version integer NOT NULL, name text NOT NULL,
                        checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
                        PRIMARY KEY (scope, version))
                    """, logger: database.logger)
                let applied = try await Self.applied(scope: "platform", connection, database.logger)
                if try Self.verify(migration, against: applied, scope: "platform") { return }
                try await Self.run(migration, scope: "platform", connection, database.logger)
            }
        }
    }

    /// Applies pending tenant migrations to every tenant schema, `parallelism` at a time.
    public func migrateTenants() async throws(LinliError) -> Report {
        let tenants: [TenantRef] = try await database.platformTransaction { connection in
            var result: [TenantRef] = []
            let rows = try await connection.run(
                "SELECT id, slug, status FROM platform.tenants ORDER BY id", logger: database.logger)
            for try await (id, slug, status) in rows.decode((UUID, String, String).self) {
                result.append(try TenantRef(id: TenantID(id), slug: slug, isActive: status == "active"))
            }
            return result
        }
        // One query for the whole ledger: a tenant is up to date when its applied
        // migrations are exactly the catalog's; an edited one fails fast here.
        let applied: [String: [Int: String]] = try await database.platformTransaction { connection in
            var result: [String: [Int: String]] = [:]
            let rows = try await connection.run(
                "SELECT scope, version, checksum FROM platform.schema_migrations WHERE scope <> 'platform'",
                logger: database.logger)
            for try await (scope, version, checksum) in rows.decode((String, Int, String).self) {
                result[scope, default: [:]][version] = checksum
            }
            return result
        }
        var behind: [TenantRef] = []
        do {
            for tenant in tenants {
                let ledger = applied[tenant.schema] ?? [:]
                let pending = try catalog.tenant.filter { try !Self.verify($0, against: ledger, scope: tenant.schema) }
                if !pending.isEmpty { behind.append(tenant) }
            }
        } catch {
            throw LinliError(.failedPrecondition, "\(error)", cause: error)
        }
        let counts: [Int]
        do {
            counts = try await withThrowingTaskGroup(of: Int.self) { group in
                var iterator = behind.makeIterator()
                var done: [Int] = []
                for _ in 0..<parallelism {
                    guard let tenant = iterator.next() else { break }
                    group.addTask { try await migrate(tenant) }
                }
                while let count = try await group.next() {
                    done.append(count)
                    if let tenant = iterator.next() { group.addTask { try await migrate(tenant) } }
                }
                return done
            }
        } catch {
            throw Database.map(error)
        }
        return Report(tenantsMigrated: counts.filter { $0 > 0 }.count, migrationsApplied: counts.reduce(0, +))
    }

    private func migrate(_ tenant: TenantRef) async throws(LinliError) -> Int {
        try await database.platformTransaction { connection in
            try await applyTenantMigrations(schema: tenant.schema, connection)
        }
    }

    /// Applies the tenant migrations `schema` lacks, inside the caller's transaction.
    /// The SQL runs as the schema's role (of the same name) so that everything it creates is owned by that role.
    /// All pending migrations go to PostgreSQL as one `DO` block (`SQLScript.block`) and are
    /// recorded by one insert: provisioning a tenant is a handful of round trips, not one per
    /// statement.
    func applyTenantMigrations(schema: String, _ connection: PostgresConnection) async throws -> Int {
        let logger = database.logger
        try await connection.run("SELECT pg_advisory_xact_lock(hashtext(\("linli.migrate." + schema)))", logger: logger)
        let applied = try await Self.applied(scope: schema, connection, logger)
        let pending = try catalog.tenant.filter { try !Self.verify($0, against: applied, scope: schema) }
        guard !pending.isEmpty else { return 0 }
        try await connection.run(
            "SELECT set_config('role', \(schema), true), set_config('search_path', \(schema), true)", logger: logger)
        let statements = pending.flatMap(\.statements)
        if let block = SQLScript.block(statements) {
            try await connection.run(PostgresQuery(unsafeSQL: block), logger: logger)
        } else {
            for statement in statements { try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger) }
        }
        try await connection.run("SET LOCAL ROLE NONE", logger: logger)
        try await connection.run("SELECT set_config('search_path', 'platform', true)", logger: logger)
        try await connection.run(
            """
            INSERT INTO platform.schema_migrations (scope, version, name, checksum)
            SELECT \(schema), * FROM unnest(\(pending.map(\.version))::int[], \(pending.map(\.name))::text[],
                                                 \(pending.map(\.checksum))::text[])
            """, logger: logger)
        return pending.count
    }

    private static func applied(scope: String, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Int: String] {
        var result: [Int: String] = [:]
        let rows = try await connection.run(
            "SELECT version, checksum FROM platform.schema_migrations WHERE scope = \(scope)", logger: logger)
        for try await (version, checksum) in rows.decode((Int, String).self) { result[version] = checksum }
        return result
    }

    /// True when `migration` is applied already; throws when its file changed since.
    private static func verify(_ migration: Migration, against applied: [Int: String], scope: String) throws -> Bool {
        guard let checksum = applied[migration.version] else { return false }
        guard checksum == migration.checksum else {
            throw MigrationError("\(scope): migration \(migration.version)_\(migration.name) was changed after it was applied")
        }
        return true
    }

    private static func run(_ migration: Migration, scope: String, _ connection: PostgresConnection, _ logger: Logger) async throws {
        for statement in migration.statements {
            try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
        try await record(migration, scope: scope, connection, logger)
    }

    private static func record(_ migration: Migration, scope: String, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.run(
            """
            INSERT INTO platform.schema_migrations (scope, version, name, checksum)
            VALUES (\(scope), \(migration.version), \(migration.name), \(migration.checksum))
            """, logger: logger)
    }
}
