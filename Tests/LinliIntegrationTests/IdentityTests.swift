import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliServer
import Testing

@Suite("Login, sessions and API keys")
struct IdentityTests {
    func loginRequest(_ slug: String, _ username: String, _ password: String) -> Linli_Identity_V1_LoginRequest {
        var request = Linli_Identity_V1_LoginRequest()
        request.tenantSlug = slug
        request.username = username
        request.password = password
        return request
    }

    @Test("wrong password, unknown user and unknown tenant all read the same; empty fields are named")
    func loginFailures() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let slug = demo.tenant.slug
        for request in [
            loginRequest(slug, "manager", "wrong-password"), loginRequest(slug, "nobody", "whatever-1"),
            loginRequest("no_such_tenant", "manager", demo.password), loginRequest("", "manager", demo.password),
        ] {
            let error = await rpcError { try await server.identity.login(request) }
            #expect(error?.code == .unauthenticated)
            #expect(error?.message.contains("password") == true)
        }
        #expect(await rpcError { try await server.identity.login(loginRequest(slug, "", "x")) }?.message.hasPrefix("username") == true)
        #expect(await rpcError { try await server.identity.login(loginRequest(slug, "manager", "")) }?.message.hasPrefix("password") == true)
    }

    @Test("WhoAmI returns the role and community scope; no or bad credentials are unauthenticated")
    func whoAmI() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let me = try await server.identity.whoAmI(.init(), metadata: try await server.login(demo, "resident2")).principal
        #expect(me.role == .resident)
        #expect(me.tenantSlug == demo.tenant.slug)
        #expect(me.communityIds == [demo.community.description])
        #expect(me.buildingIds == [demo.buildings[1].description])
        #expect(await rpcCode { try await server.identity.whoAmI(.init()) } == .unauthenticated)
        #expect(
            await rpcCode { try await server.identity.whoAmI(.init(), metadata: LinliClientTransport.bearer("lls_x_forged")) } == .unauthenticated)
    }

    @Test("logout ends the session; revoking a user's sessions ends all of them")
    func logoutAndRevoke() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let session = try await server.login(demo, "resident1")
        _ = try await server.identity.logout(.init(), metadata: session)
        #expect(await rpcCode { try await server.identity.whoAmI(.init(), metadata: session) } == .unauthenticated)

        let phone = try await server.login(demo, "resident1")
        let laptop = try await server.login(demo, "resident1")
        var revoke = Linli_Identity_V1_RevokeUserSessionsRequest()
        revoke.requestID = UUID().uuidString
        revoke.userID = demo.users["resident1"]?.description ?? ""
        let manager = try await server.login(demo, "manager")
        #expect(try await server.identity.revokeUserSessions(revoke, metadata: manager).sessionsRevoked == 2)
        for token in [phone, laptop] {
            #expect(await rpcCode { try await server.identity.whoAmI(.init(), metadata: token) } == .unauthenticated)
        }
        // A resident holds no user.manage permission.
        #expect(
            await rpcCode { try await server.identity.revokeUserSessions(revoke, metadata: try await server.login(demo, "resident2")) }
                == .permissionDenied)
    }

    @Test("a session revoked on one server is refused by another at its very next call")
    func revokedEverywhere() async throws {
        let first = try await TestServer.shared.value
        let second = try await TestServer.start { _ in }
        defer { Task { await second.stop() } }
        let demo = try await first.newTenant()
        let session = try await first.login(demo, "resident1")
        // Both servers admit it (the second has just looked it up, were there anything to cache).
        _ = try await second.identity.whoAmI(.init(), metadata: session)
        _ = try await first.identity.logout(.init(), metadata: session)
        #expect(await rpcCode { try await second.identity.whoAmI(.init(), metadata: session) } == .unauthenticated)
    }

    @Test("an idle session expires")
    func idleExpiry() async throws {
        let server = try await TestServer.start { $0.sessionIdleSeconds = 1 }
        defer { Task { await server.stop() } }
        let demo = try await server.newTenant()
        let session = try await server.login(demo, "manager")
        _ = try await server.identity.whoAmI(.init(), metadata: session)
        try await Task.sleep(for: .milliseconds(2100))
        #expect(await rpcCode { try await server.identity.whoAmI(.init(), metadata: session) } == .unauthenticated)
    }

    @Test("a suspended tenant's users can no longer log in or use their sessions, on every server within moments")
    func suspension() async throws {
        let server = try await TestServer.shared.value
        let other = try await TestServer.start { _ in }
        defer { Task { await other.stop() } }
        let demo = try await server.newTenant()
        let session = try await server.login(demo, "manager")
        // The other server has the tenant cached (for 30 s) before the suspension.
        _ = try await other.identity.whoAmI(.init(), metadata: session)
        var suspend = Linli_Platform_V1_SuspendTenantRequest()
        suspend.requestID = UUID().uuidString
        suspend.tenantID = demo.tenant.id.description
        suspend.reason = "欠费"
        #expect(try await server.platform.suspendTenant(suspend, metadata: try await server.operatorLogin()).tenant.status == .suspended)
        // The change is announced on commit; each server drops its cached tenants on the notice.
        var codes: [RPCError.Code?] = []
        for _ in 0..<40 {
            codes = [
                await rpcCode { try await server.identity.whoAmI(.init(), metadata: session) },
                await rpcCode { try await other.identity.whoAmI(.init(), metadata: session) },
            ]
            if codes.allSatisfy({ $0 == .permissionDenied }) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(codes == [.permissionDenied, .permissionDenied])
        // Signing in to a suspended tenant reads exactly like an unknown one: nobody learns which slugs exist.
        let suspended = await rpcError { try await server.login(demo, "manager") }
        let unknown = await rpcError { try await server.identity.login(loginRequest("no_such_tenant", "manager", demo.password)) }
        #expect(suspended?.code == .unauthenticated)
        #expect(suspended?.code == unknown?.code && suspended?.message == unknown?.message)
    }

    @Test("an API key is shown once, works as x-api-key within its communities, and stops when revoked")
    func apiKeys() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        var create = Linli_Identity_V1_CreateApiKeyRequest()
        create.requestID = UUID().uuidString
        create.name = "门禁厂商"
        create.communityIds = [demo.community.description]
        let created = try await server.identity.createApiKey(create, metadata: manager)
        #expect(created.secret.hasPrefix("llk_"))
        let listed = try await server.identity.listApiKeys(.init(), metadata: manager)
        #expect(listed.keys.map(\.id) == [created.key.id])
        #expect(created.secret.hasPrefix(listed.keys[0].prefix) && listed.keys[0].prefix.count < created.secret.count)

        let partner = LinliClientTransport.apiKey(created.secret)
        var list = Linli_Property_V1_ListNoticesRequest()
        list.communityID = demo.community.description
        #expect(try await server.notices.listNotices(list, metadata: partner).notices.count == 2)

        var revoke = Linli_Identity_V1_RevokeApiKeyRequest()
        revoke.requestID = UUID().uuidString
        revoke.apiKeyID = created.key.id
        _ = try await server.identity.revokeApiKey(revoke, metadata: manager)
        #expect(await rpcCode { try await server.notices.listNotices(list, metadata: partner) } == .unauthenticated)
    }
}
