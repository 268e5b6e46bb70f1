import Foundation
import LinliCore
import LinliTenancy
import PostgresNIO
import Testing

@Suite("Tenant provisioning and migrations")
struct MigrationTests {
    @Test("a one-table migration reaches 50 tenants; a failing one leaves no trace and resumes once fixed; edited history is refused")
    func fiftyTenants() async throws {
        let server = try await TestServer.shared.value
        let app = server.app
        let run = UUIDv7.make().uuidString.suffix(8).lowercased()
        let slugs = (0..<50).map { "mig_\(run)_\($0)" }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for batch in stride(from: 0, to: slugs.count, by: 10) {
                group.addTask {
                    for slug in slugs[batch..<min(batch + 10, slugs.count)] {
                        _ = try await app.provisioner.create(slug: slug, name: slug)
                    }
                }
            }
            try await group.waitForAll()
        }
        let bundled = app.migrations.catalog
        func runner(_ extra: [(String, String)]) -> MigrationRunner {
            let migrations = extra.compactMap { Migration(fileName: $0.0, sql: $0.1) }
            return MigrationRunner(
                database: app.database, catalog: MigrationCatalog(platform: bundled.platform, tenant: bundled.tenant + migrations),
                parallelism: 4)
        }
        let probe = ("9001_probe_\(run).sql", "CREATE TABLE probe_\(run) (id bigint PRIMARY KEY, note text NOT NULL DEFAULT '')")
        let first = try await runner([probe]).migrateTenants()
        #expect(first.tenantsMigrated >= 50)
        #expect(try await tablesPresent("probe_\(run)", in: slugs, app.database) == 50)
        #expect(try await runner([probe]).migrateTenants() == .init(tenantsMigrated: 0, migrationsApplied: 0))

        // A migration that fails half-way rolls back per tenant: no table, no ledger row.
        let broken = ("9002_half_\(run).sql", "CREATE TABLE half_\(run) (id int);\nSELECT 1 / 0;")
        await #expect(throws: LinliError.self) { try await runner([probe, broken]).migrateTenants() }
        #expect(try await tablesPresent("half_\(run)", in: slugs, app.database) == 0)
        let fixed = ("9002_half_\(run).sql", "CREATE TABLE half_\(run) (id int);")
        #expect(try await runner([probe, fixed]).migrateTenants().tenantsMigrated >= 50)
        #expect(try await tablesPresent("half_\(run)", in: slugs, app.database) == 50)

        // Changing an applied migration is refused rather than silently diverging.
        let edited = ("9001_probe_\(run).sql", probe.1 + " -- edited")
        let refused = await #expect(throws: LinliError.self) { try await runner([edited, fixed]).migrateTenants() }
        #expect(refused?.message.contains("changed after it was applied") == true)
    }

    @Test("a provisioned tenant has its own NOLOGIN role owning its schema; a taken slug is refused")
    func provisioning() async throws {
        let server = try await TestServer.shared.value
        let slug = "prov_" + UUIDv7.make().uuidString.suffix(8).lowercased()
        let tenant = try await server.app.provisioner.create(slug: slug, name: "新物业")
        let facts = try await server.app.database.platformTransaction { connection in
            let rows = try await connection.query(
                """
                SELECT r.rolcanlogin, pg_get_userbyid(n.nspowner)
                FROM pg_roles r, pg_namespace n WHERE r.rolname = \(tenant.ref.schema) AND n.nspname = \(tenant.ref.schema)
                """, logger: server.app.database.logger)
            for try await row in rows.decode((Bool, String).self) { return row }
            return (true, "")
        }
        #expect(facts.0 == false)
        #expect(facts.1 == tenant.ref.schema)
        await #expect(throws: LinliError.self) { try await server.app.provisioner.create(slug: slug, name: "重复") }
        await #expect(throws: LinliError.self) { try await server.app.provisioner.create(slug: "Bad-Slug", name: "x") }
    }

    @Test("a tenant made from a spare schema: schema and role renamed, owned by its NOLOGIN role, every migration recorded, no CREATE left")
    func fromSpare() async throws {
        let server = try await TestServer.shared.value
        let database = server.app.database
        func spares() async throws -> Set<String> {
            try await database.platformTransaction { connection in
                var names: Set<String> = []
                for try await name in try await connection.query("SELECT schema FROM platform.tenant_spares", logger: database.logger)
                    .decode(String.self)
                { names.insert(name) }
                return names
            }
        }
        try await server.app.provisioner.makeSpare()
        let before = try await spares()
        let slug = "spare_" + UUIDv7.make().uuidString.suffix(8).lowercased()
        let tenant = try await server.app.provisioner.create(slug: slug, name: "备用物业")
        let claimed = try #require(before.subtracting(try await spares()).first)
        let facts = try await database.platformTransaction { connection in
            let rows = try await connection.query(
                """
                SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = \(claimed)) + (SELECT count(*) FROM pg_roles WHERE rolname = \(claimed)),
                       (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = \(tenant.ref.schema)),
                       (SELECT NOT rolcanlogin FROM pg_roles WHERE rolname = \(tenant.ref.schema)),
                       has_database_privilege(\(tenant.ref.schema), current_database(), 'CREATE'),
                       (SELECT count(*) FROM platform.schema_migrations WHERE scope = \(tenant.ref.schema)),
                       (SELECT count(*) FROM platform.schema_migrations WHERE scope = \(claimed))
                """, logger: database.logger)
            for try await row in rows.decode((Int64, String, Bool, Bool, Int64, Int64).self) { return row }
            throw LinliError(.internal, "no row")
        }
        #expect(facts.0 == 0 && facts.1 == tenant.ref.schema && facts.2 && !facts.3)
        #expect(facts.4 == Int64(server.app.migrations.catalog.tenant.count) && facts.5 == 0)
        // The tenant's role reaches its own tables, and only through its schema.
        let communities = try await database.tenantTransaction(tenant.ref) { connection in
            var count: Int64 = -1
            for try await n in try await connection.query("SELECT count(*) FROM communities", logger: database.logger).decode(Int64.self) {
                count = n
            }
            return count
        }
        #expect(communities == 0)
    }

    func tablesPresent(_ table: String, in slugs: [String], _ database: Database) async throws -> Int {
        try await database.platformTransaction { connection in
            let schemas = slugs.map { "t_\($0)" }
            let rows = try await connection.query(
                """
                SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relname = \(table) AND n.nspname = ANY(\(schemas))
                """, logger: database.logger)
            for try await count in rows.decode(Int.self) { return count }
            return -1
        }
    }
}
