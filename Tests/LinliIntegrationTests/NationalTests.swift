import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliServer
import PostgresNIO
import Testing

@Suite("National layer")
struct NationalTests {
    @Test("publishing records a delta in the same transaction; the rollup folds it once into the operator overview")
    func overview() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        _ = try await server.notices.publishNotice(demo.publishRequest(title: "垃圾分类宣传周"), metadata: try await server.login(demo, "manager"))
        #expect(try await pendingDeltas(server, demo) == 4)  // 1 community, 3 notices

        try await server.app.rollup.foldAll()
        #expect(try await pendingDeltas(server, demo) == 0)
        try await server.app.rollup.foldAll()  // folding again adds nothing

        let overview = try await server.platform.getNationalOverview(.init(), metadata: try await server.operatorLogin())
        let mine = try #require(overview.perTenant.first { $0.tenantSlug == demo.tenant.slug })
        #expect(mine.communities == 1)
        #expect(mine.noticesPublished == 3)
        #expect(overview.noticesPublished == overview.perTenant.reduce(0) { $0 + $1.noticesPublished })
        #expect(overview.tenants >= Int64(overview.perTenant.count))
    }

    func pendingDeltas(_ server: TestServer, _ demo: DemoTenant) async throws -> Int {
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            let rows = try await connection.query("SELECT coalesce(sum(delta), 0)::int8 FROM metric_deltas", logger: server.app.database.logger)
            for try await count in rows.decode(Int.self) { return count }
            return -1
        }
    }
}
