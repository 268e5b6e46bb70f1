import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliDevices
import LinliServer
import LinliTenancy
import PostgresNIO
import Testing

/// A demo tenant with doors, rooms, residents and a door device, driven by the real C client.
struct AccessFixture {
    let server: TestServer
    let demo: DemoTenant
    let manager: Metadata
    let device: TestDevice
    /// "gate" (no building), "b1" (building 1), "b2" (building 2), all on `device`.
    let doors: [String: String]
    /// A residence in building 1 and one in building 2.
    let rooms: [String]

    var access: Linli_Device_V1_AccessService.Client<HTTP2ClientTransport.Posix> { .init(wrapping: server.client) }
    var base: BaseDataClient { BaseDataClient(wrapping: server.client) }

    static func make(_ server: TestServer) async throws -> AccessFixture {
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let device = try await server.registerDevice(demo, as: manager)
        let access = Linli_Device_V1_AccessService.Client(wrapping: server.client)
        var doors: [String: String] = [:]
        for (code, building) in [("gate", ""), ("b1", demo.buildings[0].description), ("b2", demo.buildings[1].description)] {
            var create = Linli_Device_V1_CreateDoorRequest()
            create.requestID = UUID().uuidString
            create.communityID = demo.community.description
            create.buildingID = building
            create.code = code
            create.name = "门 \(code)"
            let door = try await access.createDoor(create, metadata: manager).door
            var bind = Linli_Device_V1_BindDoorDeviceRequest()
            bind.requestID = UUID().uuidString
            bind.doorID = door.id
            bind.deviceID = device.id
            bind.bound = true
            _ = try await access.bindDoorDevice(bind, metadata: manager)
            doors[code] = door.id
        }
        let base = BaseDataClient(wrapping: server.client)
        var rooms: [String] = []
        for building in demo.buildings.prefix(2) {
            var room = Linli_Property_V1_CreateRoomRequest()
            room.requestID = UUID().uuidString
            room.buildingID = building.description
            room.unit = "1单元"
            room.number = "101"
            room.floor = 1
            room.areaCentiM2 = 8_950
            room.kind = .residence
            rooms.append(try await base.createRoom(room, metadata: manager).room.id)
        }
        return AccessFixture(server: server, demo: demo, manager: manager, device: device, doors: doors, rooms: rooms)
    }

    static var today: String { day(offset: 0) }

    /// The demo community's day `offset` days from today, YYYY-MM-DD.
    static func day(offset: Int) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: BusinessDay.defaultTimeZone)
        return formatter.string(from: Date().addingTimeInterval(Double(offset) * 86_400))
    }

    /// A resident living in `room` from today, linked to `user` when given.
    func resident(_ name: String, room: Int, user: String = "") async throws -> Linli_Property_V1_Resident {
        var register = Linli_Property_V1_RegisterResidentRequest()
        register.requestID = UUID().uuidString
        register.communityID = demo.community.description
        register.name = name
        register.userID = user
        register.roomID = rooms[room]
        register.relation = .owner
        register.moveIn = Self.today
        return try await base.registerResident(register, metadata: manager).resident
    }

    func card(_ number: String, resident: String = "", staff: String = "") async throws -> Linli_Device_V1_AccessCredential {
        var issue = Linli_Device_V1_IssueCredentialRequest()
        issue.requestID = UUID().uuidString
        issue.communityID = demo.community.description
        issue.residentID = resident
        issue.staffUserID = staff
        issue.kind = .card
        issue.value = number
        return try await access.issueCredential(issue, metadata: manager).credential
    }

    func revoke(_ credential: String) async throws {
        var revoke = Linli_Device_V1_RevokeCredentialRequest()
        revoke.requestID = UUID().uuidString
        revoke.credentialID = credential
        revoke.reason = "卡丢失"
        _ = try await access.revokeCredential(revoke, metadata: manager)
    }

    /// Reconciles what the changes marked now, as the gateway does on their notification.
    /// Reconciles the marked devices, and waits for a pass the server's own job is running at
    /// the same time (it holds the rows this pass skips) to commit.
    func settle() async throws {
        for _ in 0..<100 {
            try await WhitelistStore(database: server.app.database).reconcileMarked(tenant: demo.tenant, logger: server.app.logger)
            let dirty = try await server.app.database.tenantTransaction(demo.tenant) { connection in
                var count: Int64 = 0
                for try await n in try await connection.query("SELECT count(*) FROM whitelist_marks", logger: server.app.logger)
                    .decode(Int64.self)
                { count = n }
                return count
            }
            if dirty == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("communities stayed marked for a whitelist reconcile")
    }

    /// Runs the device for `seconds` with `extra` arguments; returns its output.
    func runDevice(_ extra: [String], seconds: Int = 2) async throws -> DeviceProgram.Result {
        let result = try await DeviceProgram.run(device.arguments() + ["--run-seconds", "\(seconds)"] + extra)
        #expect(result.status == 0, "\(result.errors)")
        return result
    }

    func status() async throws -> Linli_Device_V1_GetWhitelistStatusResponse {
        try await access.getWhitelistStatus(.with { $0.deviceID = device.id }, metadata: manager)
    }
}

@Suite("Access control: whitelists, the access log, QR codes and remote opening", .serialized)
struct AccessTests {
    @Test("B-1: an offline device gets exactly the net diff; a moved-out resident is off every door after one sync")
    func whitelistDiff() async throws {
        let f = try await AccessFixture.make(try await TestServer.shared.value)
        let first = try await f.resident("老住户", room: 0)
        _ = try await f.card("CARD0001", resident: first.id)
        try await f.settle()

        let sync = try await f.runDevice([])
        #expect(sync.output.contains("full=1 upserts=1 removes=0 entries=1"), "\(sync.output)")
        let synced = try await f.status()
        #expect(synced.ackedVersion == synced.version)

        // Offline: three residents get cards, one card is revoked.
        var cards: [Linli_Device_V1_AccessCredential] = []
        for index in 1...3 {
            let resident = try await f.resident("新住户\(index)", room: 1)
            cards.append(try await f.card("CARD000\(index + 1)", resident: resident.id))
            try await f.settle()
        }
        try await f.revoke(cards[2].id)
        try await f.settle()
        let behind = try await f.status()
        #expect(behind.version == synced.version + 4)

        let diff = try await f.runDevice(["--swipe", "CARD0002", "--swipe", "CARD0004", "--door", "b2"])
        #expect(diff.output.contains("whitelist \(synced.version) -> \(behind.version) full=0 upserts=2 removes=0 entries=3"), "\(diff.output)")
        #expect(diff.output.contains("access card CARD0002 granted"))
        #expect(diff.output.contains("access card CARD0004 refused: unknown card"), "the revoked card never reached the device")
        // A stale acknowledgement changes nothing.
        let store = WhitelistStore(database: f.server.app.database)
        let deviceID = DeviceID(try #require(UUID(uuidString: f.device.id)))
        #expect(try await !store.acknowledge(Int64(synced.version), device: deviceID, tenant: f.demo.tenant, logger: f.server.app.logger))
        #expect(try await f.status().ackedVersion == behind.version)

        // The first resident moves out today: off every door at the next sync.
        var move = Linli_Property_V1_MoveOutRequest()
        move.requestID = UUID().uuidString
        move.residencyID = try #require(first.residencies.first?.id)
        move.moveOut = AccessFixture.today
        _ = try await f.base.moveOut(move, metadata: f.manager)
        try await f.settle()
        let moved = try await f.runDevice(["--swipe", "CARD0001", "--door", "gate"])
        #expect(moved.output.contains("upserts=0 removes=1 entries=2"), "\(moved.output)")
        #expect(moved.output.contains("access card CARD0001 refused: unknown card"))
    }

    @Test("a card written while a reconcile runs reaches the device: a pass that cannot see the writer leaves its mark")
    func markOutlivesStalePass() async throws {
        let f = try await AccessFixture.make(try await TestServer.shared.value)
        let holder = try await f.resident("持卡人", room: 0)
        try await f.settle()
        let manager = try #require(f.demo.users["manager"])
        let logger = f.server.app.logger
        try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            // Another change commits first (the devices are marked), then this writer adds a
            // card and a reconcile runs before it commits: the reconcile cannot see the card.
            _ = try await f.resident("邻居", room: 1)
            try await connection.query(
                """
                INSERT INTO access_credentials (id, community_id, resident_id, kind, value, created_by)
                VALUES (\(UUID()), \(f.demo.community.uuid), \(try #require(UUID(uuidString: holder.id))), 'card', 'CARD0100', \(manager.uuid))
                """, logger: logger)
            try await WhitelistStore(database: f.server.app.database).reconcileMarked(tenant: f.demo.tenant, logger: logger)
        }
        try await f.settle()
        let cards = try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            var values: [String] = []
            for try await value in try await connection.query(
                "SELECT value FROM whitelist_entries WHERE removed_version IS NULL AND kind = 'card'", logger: logger
            ).decode(String.self) { values.append(value) }
            return values
        }
        #expect(cards == ["CARD0100"])
    }

    @Test("QR codes verify offline on the device; residents see only their own access history")
    func qrAndOwnHistory() async throws {
        let server = try await TestServer.shared.value
        let f = try await AccessFixture.make(server)
        let one = try #require(f.demo.users["resident1"])
        let two = try #require(f.demo.users["resident2"])
        _ = try await f.resident("住户1", room: 0, user: one.description)
        _ = try await f.resident("住户2", room: 1, user: two.description)
        let residentOne = try await server.login(f.demo, "resident1")
        let residentTwo = try await server.login(f.demo, "resident2")
        let codeOne = try await f.access.issueQRCode(.with { $0.communityID = f.demo.community.description }, metadata: residentOne).code
        let codeTwo = try await f.access.issueQRCode(.with { $0.communityID = f.demo.community.description }, metadata: residentTwo).code
        #expect(codeOne.hasPrefix("LQ1."))
        var forged = Array(codeOne)
        forged[8] = forged[8] == "A" ? "B" : "A"

        let result = try await f.runDevice(
            ["--door", "b1", "--scan-qr", codeOne, "--scan-qr", codeTwo, "--scan-qr", String(forged)], seconds: 3)
        let lines = result.output.split(separator: "\n").filter { $0.hasPrefix("access qr") }
        #expect(lines == ["access qr granted", "access qr refused: not allowed at this door", "access qr refused: QR signature does not verify"])

        let mine = try await f.access.listMyAccessLog(.init(), metadata: residentOne).entries
        #expect(mine.count == 1)
        #expect(mine.first?.method == .qr && mine.first?.granted == true && mine.first?.doorCode == "b1")
        let theirs = try await f.access.listMyAccessLog(.init(), metadata: residentTwo).entries
        #expect(theirs.count == 1 && theirs.first?.granted == false)
        var all = Linli_Device_V1_ListAccessLogRequest()
        all.communityID = f.demo.community.description
        all.page.pageSize = 2
        let firstPage = try await f.access.listAccessLog(all, metadata: f.manager)
        #expect(firstPage.entries.count == 2 && !firstPage.nextPageToken.isEmpty)
        all.page.pageToken = firstPage.nextPageToken
        #expect(try await f.access.listAccessLog(all, metadata: f.manager).entries.count == 1)
        #expect(await rpcCode { try await f.access.listAccessLog(all, metadata: residentOne) } == .permissionDenied)
    }

    @Test("unknown cards past the community's threshold raise one stranger alarm in the guards' inbox")
    func strangerAlarm() async throws {
        let server = try await TestServer.shared.value
        let f = try await AccessFixture.make(server)
        var settings = Linli_Device_V1_SetAccessSettingsRequest()
        settings.requestID = UUID().uuidString
        settings.settings.communityID = f.demo.community.description
        settings.settings.strangerThreshold = 3
        settings.settings.strangerWindowMinutes = 10
        settings.settings.retentionDays = 7
        _ = try await f.access.setAccessSettings(settings, metadata: f.manager)

        _ = try await f.runDevice(["--swipe", "X0000001", "--swipe", "X0000002"])
        let guardSession = try await server.login(f.demo, "guard")
        let inbox = Linli_Property_V1_InboxService.Client(wrapping: server.client)
        func alarms() async throws -> Int {
            try await inbox.listNotifications(.init(), metadata: guardSession).notifications.filter { $0.topic == "device.alarm" }.count
        }
        #expect(try await alarms() == 0)
        _ = try await f.runDevice(["--swipe", "X0000003", "--swipe", "X0000004"])
        let deadline = ContinuousClock.now + .seconds(5)
        while try await alarms() == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await alarms() == 1, "one alarm while it is active, not one per stranger")
    }

    @Test("a face needs consent and leaves every device when consent is withdrawn; a card always works")
    func faces() async throws {
        let server = try await TestServer.shared.value
        let f = try await AccessFixture.make(server)
        let one = try #require(f.demo.users["resident1"])
        let resident = try await f.resident("住户1", room: 0, user: one.description)
        var face = Linli_Device_V1_IssueCredentialRequest()
        face.requestID = UUID().uuidString
        face.communityID = f.demo.community.description
        face.residentID = resident.id
        face.kind = .face
        face.value = "tpl-7f3a"
        let refused = await rpcError { try await f.access.issueCredential(face, metadata: f.manager) }
        #expect(refused?.code == .invalidArgument && refused?.message.hasPrefix("face_consent") == true)
        face.faceConsent = true
        _ = try await f.access.issueCredential(face, metadata: f.manager)
        _ = try await f.card("CARD1234", resident: resident.id)
        try await f.settle()
        #expect(try await f.runDevice([]).output.contains("entries=2"))

        let session = try await server.login(f.demo, "resident1")
        var withdraw = Linli_Device_V1_WithdrawFaceConsentRequest()
        withdraw.requestID = UUID().uuidString
        withdraw.communityID = f.demo.community.description
        #expect(try await f.access.withdrawFaceConsent(withdraw, metadata: session).revoked == 1)
        try await f.settle()
        let after = try await f.runDevice(["--swipe", "CARD1234", "--door", "b1"])
        #expect(after.output.contains("upserts=0 removes=1 entries=1"))
        #expect(after.output.contains("access card CARD1234 granted"))
    }

    @Test("remote opening: a resident opens the gate and their building's door, not another building's")
    func remoteOpen() async throws {
        let server = try await TestServer.shared.value
        let f = try await AccessFixture.make(server)
        let one = try #require(f.demo.users["resident1"])
        _ = try await f.resident("住户1", room: 0, user: one.description)
        let session = try await server.login(f.demo, "resident1")
        let before = server.app.deviceGateway.connectedCount
        let running = try DeviceProgram.start(f.device.arguments() + ["--run-seconds", "3"])
        try await server.waitForConnections(before + 1)
        func open(_ door: String, as who: Metadata) async throws -> Linli_Device_V1_OpenDoorResponse {
            var request = Linli_Device_V1_OpenDoorRequest()
            request.requestID = UUID().uuidString
            request.doorID = try #require(f.doors[door])
            return try await f.access.openDoor(request, metadata: who)
        }
        let gate = try await open("gate", as: session)
        #expect(gate.commands.count == 1)
        #expect(await rpcCode { try await open("b2", as: session) } == .permissionDenied)
        let guardSession = try await server.login(f.demo, "guard")
        let b2 = try await open("b2", as: guardSession)
        let result = try await running.finish()
        #expect(result.output.contains("command \(gate.commands[0].id) open_door gate"))
        #expect(result.output.contains("command \(b2.commands[0].id) open_door b2"))
    }

    @Test("a visitor pass opens the gates in its window; access records past the retention are deleted")
    func visitorsAndRetention() async throws {
        let server = try await TestServer.shared.value
        let f = try await AccessFixture.make(server)
        let resident = try await server.login(f.demo, "resident1")
        var visit = Linli_Property_V1_RegisterVisitorRequest()
        visit.requestID = UUID().uuidString
        visit.communityID = f.demo.community.description
        visit.visitorName = "访客甲"
        visit.validUntil = .init(date: Date().addingTimeInterval(3600))
        let pass = try await Linli_Property_V1_VisitorService.Client(wrapping: server.client).registerVisitor(visit, metadata: resident).pass
        try await f.settle()
        let synced = try await f.runDevice([])
        #expect(synced.output.contains("full=1 upserts=1 removes=0 entries=1"), "\(synced.output)")
        let entry = try await server.app.database.tenantTransaction(f.demo.tenant) { connection in
            var found: [String] = []
            let rows = try await connection.query(
                "SELECT kind || ':' || value || ':' || array_to_string(door_codes, ',') FROM whitelist_entries WHERE key = \(pass.id)",
                logger: server.app.logger)
            for try await text in rows.decode(String.self) { found.append(text) }
            return found
        }
        #expect(entry == ["visitor_code:\(pass.code):gate"], "a pass opens the gates only")

        // Two events two days old, then a retention of one day.
        _ = try await DeviceProgram.run(f.device.arguments("capture") + ["--capture", "2", "--time-offset-ms", "-172800000"])
        _ = try await f.runDevice(["--swipe", "X1", "--exit-when-acked"])
        var settings = Linli_Device_V1_SetAccessSettingsRequest()
        settings.requestID = UUID().uuidString
        settings.settings = .with {
            $0.communityID = f.demo.community.description
            $0.strangerThreshold = 5
            $0.strangerWindowMinutes = 10
            $0.retentionDays = 1
        }
        _ = try await f.access.setAccessSettings(settings, metadata: f.manager)
        try await server.app.deviceGateway.tidy()
        var all = Linli_Device_V1_ListAccessLogRequest()
        all.communityID = f.demo.community.description
        let left = try await f.access.listAccessLog(all, metadata: f.manager).entries
        #expect(left.count == 1 && left.first?.late == false, "the two old records are gone, today's stays")
        #expect(try await server.storedEvents(f.device, as: f.manager).count == 1)
    }
}
