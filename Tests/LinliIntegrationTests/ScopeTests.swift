import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliServer
import Testing

/// Scopes inside one tenant and the sign-in defences: a manager of one community reaches
/// nothing of another, a resident nothing of another resident, and guessing is slowed down.
@Suite("Scopes and sign-in defences")
struct ScopeTests {
    /// A second community of `demo` with a manager (`manager2`) scoped to it alone.
    func secondCommunity(_ server: TestServer, _ demo: DemoTenant) async throws -> (CommunityID, Metadata) {
        var create = Linli_Platform_V1_CreateCommunityRequest()
        create.requestID = UUID().uuidString
        create.tenantID = demo.tenant.id.description
        create.name = "第二小区"
        create.buildingNames = ["A座"]
        let community = CommunityID(
            try #require(
                UUID(
                    uuidString: try await server.platform
                        .createCommunity(create, metadata: try await server.operatorLogin()).community.id)))
        _ = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await server.app.users.create(
                .init(
                    username: "manager2", displayName: "二区经理", password: demo.password,
                    role: .manager, communityIDs: [community]),
                on: connection, logger: server.app.database.logger)
        }
        return (community, try await server.login(demo, "manager2"))
    }

    @Test("a manager of another community can neither see nor revoke this community's API keys, nor end its users' sessions")
    func identityScope() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let (_, manager2) = try await secondCommunity(server, demo)

        var create = Linli_Identity_V1_CreateApiKeyRequest()
        create.requestID = UUID().uuidString
        create.name = "门禁厂商"
        create.communityIds = [demo.community.description]
        let created = try await server.identity.createApiKey(create, metadata: manager)
        #expect(try await server.identity.listApiKeys(.init(), metadata: manager2).keys.isEmpty)
        var revoke = Linli_Identity_V1_RevokeApiKeyRequest()
        revoke.requestID = UUID().uuidString
        revoke.apiKeyID = created.key.id
        #expect(await rpcCode { try await server.identity.revokeApiKey(revoke, metadata: manager2) } == .notFound)
        #expect(try await server.identity.listApiKeys(.init(), metadata: manager).keys.first?.hasRevokedAt == false)

        let resident = try await server.login(demo, "resident1")
        var sessions = Linli_Identity_V1_RevokeUserSessionsRequest()
        sessions.requestID = UUID().uuidString
        sessions.userID = demo.users["resident1"]?.description ?? ""
        #expect(await rpcCode { try await server.identity.revokeUserSessions(sessions, metadata: manager2) } == .notFound)
        #expect(try await server.identity.whoAmI(.init(), metadata: resident).principal.role == .resident)
    }

    @Test("a disabled or re-scoped user loses the old access at once; a manager of another community reaches neither")
    func accessChanges() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let (second, manager2) = try await secondCommunity(server, demo)
        let guardSession = try await server.login(demo, "guard")
        var disable = Linli_Identity_V1_SetUserStatusRequest()
        disable.requestID = UUID().uuidString
        disable.userID = demo.users["guard"]?.description ?? ""
        disable.disabled = true
        #expect(await rpcCode { try await server.identity.setUserStatus(disable, metadata: manager2) } == .notFound)
        #expect(try await server.identity.whoAmI(.init(), metadata: guardSession).principal.role == .guard)
        #expect(try await server.identity.setUserStatus(disable, metadata: manager).sessionsRevoked == 1)
        #expect(await rpcCode { try await server.identity.whoAmI(.init(), metadata: guardSession) } == .unauthenticated)
        #expect(await rpcCode { try await server.login(demo, "guard") } == .unauthenticated)
        disable.requestID = UUID().uuidString
        disable.disabled = false
        _ = try await server.identity.setUserStatus(disable, metadata: manager)
        _ = try await server.login(demo, "guard")

        // Moved to the second community: the old session ends; the next one carries the new scope.
        let cashier = try await server.login(demo, "cashier")
        var scope = Linli_Identity_V1_SetUserScopeRequest()
        scope.requestID = UUID().uuidString
        scope.userID = demo.users["cashier"]?.description ?? ""
        scope.communityIds = [second.description]
        #expect(await rpcCode { try await server.identity.setUserScope(scope, metadata: manager) } == .permissionDenied)
        _ = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await connection.query(
                "INSERT INTO user_communities (user_id, community_id) VALUES (\(demo.users["manager"]!.uuid), \(second.uuid))",
                logger: server.app.database.logger)
        }
        let both = try await server.login(demo, "manager")
        #expect(try await server.identity.setUserScope(scope, metadata: both).sessionsRevoked == 1)
        #expect(await rpcCode { try await server.identity.whoAmI(.init(), metadata: cashier) } == .unauthenticated)
        let moved = try await server.identity.whoAmI(.init(), metadata: try await server.login(demo, "cashier"))
        #expect(moved.principal.communityIds == [second.description])
    }

    @Test("CreateApiKey retried with its request_id returns the same key and creates no second one")
    func apiKeyReplay() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        var create = Linli_Identity_V1_CreateApiKeyRequest()
        create.requestID = UUID().uuidString
        create.name = "停车系统"
        create.communityIds = [demo.community.description]
        let first = try await server.identity.createApiKey(create, metadata: manager)
        let again = try await server.identity.createApiKey(create, metadata: manager)
        #expect(again.key.id == first.key.id)
        #expect(first.secret.hasPrefix("llk_") && again.secret.isEmpty)
        #expect(try await server.identity.listApiKeys(.init(), metadata: manager).keys.count == 1)
        create.name = "另一个"
        #expect(await rpcCode { try await server.identity.createApiKey(create, metadata: manager) } == .failedPrecondition)
    }

    @Test("failed sign-ins are throttled per account from any address, with a retry delay; the right password waits too")
    func accountThrottle() async throws {
        let server = try await TestServer.start { configuration in
            configuration.rateLimits[.account] = RateLimit(perSecond: 0.5, burst: 3)
        }
        defer { Task { await server.stop() } }
        let demo = try await server.newTenant()
        var wrong = Linli_Identity_V1_LoginRequest()
        wrong.tenantSlug = demo.tenant.slug
        wrong.username = "cashier"
        wrong.password = "not-the-password"
        for _ in 0..<3 { #expect(await rpcCode { try await server.identity.login(wrong) } == .unauthenticated) }
        let throttled = await rpcError { try await server.login(demo, "cashier") }
        #expect(throttled?.code == .resourceExhausted)
        #expect(Int(throttled?.metadata[stringValues: "retry-after-ms"].first(where: { _ in true }) ?? "") ?? 0 > 0)
        // Another account is untouched, and the budget refills: a back-off, never a lock.
        _ = try await server.login(demo, "manager")
        try await Task.sleep(for: .milliseconds(2_200))
        _ = try await server.login(demo, "cashier")
    }

    @Test("bad credentials are throttled per address before any lookup")
    func badCredentialThrottle() async throws {
        // The bucket is per address and shared by every server process, so the test keeps its
        // debt small (it drains in a fraction of a second) for the tests that follow.
        let server = try await TestServer.start { configuration in
            configuration.rateLimits[.authfail] = RateLimit(perSecond: 10, burst: 2)
        }
        defer { Task { await server.stop() } }
        let forged = LinliClientTransport.apiKey("llk_" + String(repeating: "x", count: 43))
        var codes: [RPCError.Code?] = []
        for _ in 0..<12 { codes.append(await rpcCode { try await server.identity.whoAmI(.init(), metadata: forged) }) }
        #expect(codes.prefix(2).allSatisfy { $0 == .unauthenticated })
        #expect(codes.contains(.resourceExhausted))
        try await Task.sleep(for: .milliseconds(500))
    }

    @Test("a resident sees due vaccinations only of pets in their own rooms")
    func petScope() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let pets = Linli_Property_V1_PetService.Client(wrapping: server.client)
        var rooms: [String] = []
        for (index, building) in demo.buildings.prefix(2).enumerated() {
            var room = Linli_Property_V1_CreateRoomRequest()
            room.requestID = UUID().uuidString
            room.buildingID = building.description
            room.unit = "1单元"
            room.number = "10\(index + 1)"
            room.areaCentiM2 = 8_950
            room.kind = .residence
            let base = Linli_Property_V1_BaseDataService.Client(wrapping: server.client)
            let created = try await base.createRoom(room, metadata: try await server.login(demo, "manager"))
            rooms.append(created.room.id)
        }
        // Each resident lives in one room and registers a pet there, never vaccinated.
        let base = Linli_Property_V1_BaseDataService.Client(wrapping: server.client)
        let manager = try await server.login(demo, "manager")
        for (index, username) in ["resident1", "resident2"].enumerated() {
            var resident = Linli_Property_V1_RegisterResidentRequest()
            resident.requestID = UUID().uuidString
            resident.communityID = demo.community.description
            resident.name = "住户\(index + 1)"
            resident.phone = "1380013800\(index)"
            resident.roomID = rooms[index]
            resident.relation = .owner
            resident.moveIn = "2026-01-01"
            resident.userID = demo.users[username]?.description ?? ""
            _ = try await base.registerResident(resident, metadata: manager)
            var pet = Linli_Property_V1_RegisterPetRequest()
            pet.requestID = UUID().uuidString
            pet.roomID = rooms[index]
            pet.name = index == 0 ? "旺财" : "咪咪"
            pet.species = index == 0 ? .dog : .cat
            _ = try await pets.registerPet(pet, metadata: try await server.login(demo, username))
        }
        var due = Linli_Property_V1_ListDueVaccinationsRequest()
        due.communityID = demo.community.description
        let mine = try await pets.listDueVaccinations(due, metadata: try await server.login(demo, "resident1")).due
        #expect(mine.map(\.pet.name) == ["旺财"])
        #expect(try await pets.listDueVaccinations(due, metadata: manager).due.count == 2)
    }
}
