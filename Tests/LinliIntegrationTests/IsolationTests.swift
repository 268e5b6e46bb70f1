import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import PostgresNIO
import Testing

@Suite("Tenant isolation")
struct IsolationTests {
    @Test(
        "SQL run for tenant A that names tenant B's schema is refused by PostgreSQL",
        arguments: [
            "SELECT count(*) FROM %@.notices",
            "SELECT password_hash FROM %@.users",
            "UPDATE %@.notices SET title = 'pwned'",
            "INSERT INTO %@.communities (id, name, address, time_zone) VALUES (gen_random_uuid(), 'x', 'x', 'UTC')",
            "DELETE FROM %@.metric_deltas",
        ])
    func crossSchemaSQL(template: String) async throws {
        let server = try await TestServer.shared.value
        let a = try await server.newTenant()
        let b = try await server.newTenant()
        let sql = template.replacingOccurrences(of: "%@", with: b.tenant.schema)
        do {
            try await server.app.database.tenantTransaction(a.tenant) { connection in
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: server.app.database.logger)
            }
            Issue.record("tenant A ran: \(sql)")
        } catch {
            #expect(error.code == .permissionDenied)
            #expect(Database.sqlState(error) == "42501")
        }
        // The application role itself holds no rights on tenant tables.
        await #expect(throws: LinliError.self) {
            try await server.app.database.platformTransaction { connection in
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: server.app.database.logger)
            }
        }
        // The platform schema is out of reach from a tenant transaction.
        await #expect(throws: LinliError.self) {
            try await server.app.database.tenantTransaction(a.tenant) { connection in
                try await connection.query("SELECT count(*) FROM platform.tenants", logger: server.app.database.logger)
            }
        }
    }

    @Test("no RPC of tenant A's users reads or changes tenant B's rows")
    func crossTenantRPCs() async throws {
        let server = try await TestServer.shared.value
        let a = try await server.newTenant()
        let b = try await server.newTenant()
        let managerA = try await server.login(a, "manager")
        let residentA = try await server.login(a, "resident1")

        var list = Linli_Property_V1_ListNoticesRequest()
        list.communityID = b.community.description
        #expect(await rpcCode { try await server.notices.listNotices(list, metadata: managerA) } == .permissionDenied)

        let publish = b.publishRequest(title: "越权")
        #expect(await rpcCode { try await server.notices.publishNotice(publish, metadata: managerA) } == .permissionDenied)

        var mark = Linli_Property_V1_MarkNoticeReadRequest()
        mark.requestID = UUID().uuidString
        mark.noticeID = b.notices[0].description
        #expect(await rpcCode { try await server.notices.markNoticeRead(mark, metadata: residentA) } == .notFound)

        var stats = Linli_Property_V1_GetNoticeReadStatsRequest()
        stats.noticeID = b.notices[0].description
        #expect(await rpcCode { try await server.notices.getNoticeReadStats(stats, metadata: managerA) } == .notFound)

        var revoke = Linli_Identity_V1_RevokeUserSessionsRequest()
        revoke.requestID = UUID().uuidString
        revoke.userID = b.users["resident1"]?.description ?? ""
        #expect(await rpcCode { try await server.identity.revokeUserSessions(revoke, metadata: managerA) } == .notFound)

        // B's rows are untouched.
        let managerB = try await server.login(b, "manager")
        list.communityID = b.community.description
        let feed = try await server.notices.listNotices(list, metadata: managerB)
        #expect(feed.notices.map(\.title) == ["欢迎使用邻里", "1栋周三停水"])
        stats.noticeID = b.notices[0].description
        #expect(try await server.notices.getNoticeReadStats(stats, metadata: managerB).readCount == 0)
        // Tenant users cannot reach operator RPCs.
        #expect(await rpcCode { try await server.platform.getNationalOverview(.init(), metadata: managerA) } == .permissionDenied)
    }
}
