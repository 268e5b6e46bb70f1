import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliDevices
import LinliParking
import LinliServer
import LinliTenancy
import PostgresNIO
import Testing

/// A lot with an entry and an exit lane on a barrier camera (the real C client), the research
/// note's fee table, in a fresh demo tenant.
struct ParkingFixture {
    let server: TestServer
    let demo: DemoTenant
    let manager: Metadata
    let camera: TestDevice
    let lot: Linli_Parking_V1_Lot

    var parking: Linli_Parking_V1_ParkingService.Client<HTTP2ClientTransport.Posix> { .init(wrapping: server.client) }

    static func make(_ server: TestServer) async throws -> ParkingFixture {
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let camera = try await server.registerDevice(demo, as: manager, kind: .barrier)
        let parking = Linli_Parking_V1_ParkingService.Client(wrapping: server.client)
        let lot = try await parking.createLot(
            .with {
                $0.requestID = UUID().uuidString
                $0.communityID = demo.community.description
                $0.code = "P1"
                $0.name = "地面停车场"
                $0.kind = .aboveGround
                $0.capacity = 100
            }, metadata: manager)
        let fixture = ParkingFixture(server: server, demo: demo, manager: manager, camera: camera, lot: lot)
        try await fixture.lane("in", .entry, on: camera)
        try await fixture.lane("out", .exit, on: camera)
        _ = try await parking.setFeeRule(
            .with {
                $0.requestID = UUID().uuidString
                $0.lotID = lot.id
                $0.name = "临时车标准"
                $0.rule = .with {
                    $0.kind = .standard
                    $0.freeMinutes = 15
                    $0.tariff = .with {
                        $0.firstBlockMinutes = 60
                        $0.firstBlockFen = 500
                        $0.stepMinutes = 30
                        $0.stepFen = 200
                        $0.capFen = 2_000
                    }
                }
            }, metadata: manager)
        return fixture
    }

    func lane(_ code: String, _ direction: Linli_Parking_V1_LaneDirection, on device: TestDevice) async throws {
        _ = try await parking.addLane(
            .with {
                $0.requestID = UUID().uuidString
                $0.lotID = lot.id
                $0.deviceID = device.id
                $0.code = code
                $0.name = code == "in" ? "入口" : "出口"
                $0.direction = direction
            }, metadata: manager)
    }

    /// Reads `plates` at `lane` live on `device`; returns the gate lines the client printed.
    func read(_ plates: [String], at lane: String, on device: TestDevice? = nil) async throws -> [String] {
        let result = try await DeviceProgram.run(
            (device ?? camera).arguments() + ["--lane", lane, "--exit-when-acked", "--quiet"] + plates.flatMap { ["--plate", $0] })
        #expect(result.status == 0, "\(result.errors)")
        return result.output.split(separator: "\n").map(String.init).filter { $0.hasPrefix("gate ") }
    }

    /// Moves the car's open session's entry `minutes` into the past (a stay that began earlier).
    func backdate(_ plate: String, minutes: Int) async throws {
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await connection.query(
                """
                UPDATE parking_sessions SET entered_at = entered_at - make_interval(mins => \(Int32(clamping: minutes)))
                WHERE plate = \(plate) AND exited_at IS NULL
                """, logger: server.app.logger)
        }
    }

    func sessions(_ plate: String) async throws -> [Linli_Parking_V1_Session] {
        try await parking.listSessions(
            .with {
                $0.lotID = lot.id; $0.plate = plate
            }, metadata: manager
        ).sessions
    }

    func quote(_ plate: String, as session: Metadata? = nil) async throws -> Linli_Parking_V1_SessionQuote {
        try await parking.quoteSession(
            .with {
                $0.lotID = lot.id; $0.plate = plate
            }, metadata: session ?? manager)
    }

    func pay(_ session: String, _ fen: Int64, as caller: Metadata? = nil) async throws -> Linli_Parking_V1_PaySessionResponse {
        try await parking.paySession(
            .with {
                $0.requestID = UUID().uuidString
                $0.sessionID = session
                $0.amountFen = fen
                $0.method = .wechat
            }, metadata: caller ?? manager)
    }

    static var today: String { AccessFixture.today }
    /// The local day before today (a stay backdated past midnight began then).
    static var yesterday: String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: BusinessDay.defaultTimeZone)
        return formatter.string(from: Date().addingTimeInterval(-86_400))
    }
}

@Suite("Parking: plate reads at the gate, fees, payments, coupons (the C client over TLS)", .serialized)
struct ParkingTests {
    @Test("a car enters, is asked the fee at the exit, pays in the app and leaves; the money is on the ledger and in the daily close")
    func enterPayLeave() async throws {
        let f = try await ParkingFixture.make(try await TestServer.shared.value)
        let entry = try await f.read(["沪B·12345"], at: "in")
        #expect(entry.count == 1 && entry[0].contains("OPEN temp"), "\(entry)")
        let open = try await f.sessions("沪B12345")
        #expect(open.count == 1 && open[0].open && open[0].carClass == .temp && open[0].feeRuleVersion == 1)
        #expect(try await f.parking.listLots(.with { $0.communityID = f.demo.community.description }, metadata: f.manager).lots[0].occupied == 1)

        // 149 minutes and a few seconds inside (150 started minutes): 500 + 3 × 200 = 1100 at the exit.
        try await f.backdate("沪B12345", minutes: 149)
        let refused = try await f.read(["沪B12345"], at: "out")
        #expect(refused.count == 1 && refused[0].contains("CLOSED pay_due due 11.00"), "\(refused)")
        let resident = try await f.server.login(f.demo, "resident1")
        let quote = try await f.quote("沪B12345", as: resident)
        #expect(quote.dueFen == 1_100 && quote.grossFen == 1_100)
        // A stale amount is refused whole; the right one is taken, with a parking receipt.
        await #expect(throws: RPCError.self) { _ = try await f.pay(quote.session.id, 900, as: resident) }
        let paid = try await f.pay(quote.session.id, 1_100, as: resident)
        #expect(paid.payment.receiptNo.hasPrefix("P") && paid.payment.amountFen == 1_100 && paid.payment.refundedFen == 0)
        #expect(paid.quote.dueFen == 0 && paid.quote.hasLeaveBy)
        // Within the pay window the barrier opens at no further charge.
        let leave = try await f.read(["沪B12345"], at: "out")
        #expect(leave.count == 1 && leave[0].contains("OPEN paid"), "\(leave)")
        let closed = try await f.sessions("沪B12345")
        #expect(closed.count == 1 && !closed[0].open && closed[0].paidFen == 1_100)

        let report = try await f.parking.getParkingReport(
            .with {
                $0.lotID = f.lot.id; $0.from = ParkingFixture.yesterday; $0.to = ParkingFixture.today
            }, metadata: f.manager)
        #expect(report.entries == 1 && report.exits == 1 && report.revenueFen == 1_100 && report.occupied == 0, "\(report)")
        #expect(report.byRule.first?.carClass == .temp && report.byRule.first?.feeRuleVersion == 1)
        let close = try await Linli_Billing_V1_BillingService.Client(wrapping: f.server.client).getDailyClose(
            .with {
                $0.communityID = f.demo.community.description; $0.day = ParkingFixture.today
            }, metadata: f.manager)
        #expect(close.rows.contains { $0.method == "wechat" && $0.takenFen >= 1_100 }, "\(close.rows)")

        // The national layer: the tenant's parking revenue and its cars inside, folded by the rollup.
        try await f.server.app.rollup.foldAll()
        let overview = try await f.server.platform.getNationalOverview(.init(), metadata: try await f.server.operatorLogin())
        let mine = try #require(overview.perTenant.first { $0.tenantSlug == f.demo.tenant.slug })
        #expect(mine.parkingRevenueFen == 1_100 && mine.parkingOccupied == 0)
    }

    @Test("A-5: duplicate reads make one session; an exit flushed before its entry is reconciled, never billed")
    func redeliveryAndOutOfOrder() async throws {
        let f = try await ParkingFixture.make(try await TestServer.shared.value)
        // Three reads of one car within seconds: one session, the same answer three times.
        let reads = try await f.read(["沪C12345", "沪C12345", "沪C12345"], at: "in")
        #expect(reads.count == 3 && reads.allSatisfy { $0.contains("OPEN") }, "\(reads)")
        #expect(try await f.sessions("沪C12345").count == 1)

        // Offline: the exit (10 min ago) is buffered before the entry (70 min ago) and both are
        // flushed late, exit first.
        let lane = f.camera
        for (code, offset) in [("out", -600_000), ("in", -4_200_000)] {
            let captured = try await DeviceProgram.run(
                lane.arguments("capture") + ["--lane", code, "--plate", "沪D12345", "--time-offset-ms", "\(offset)"])
            #expect(captured.status == 0, "\(captured.errors)")
        }
        let flushed = try await DeviceProgram.run(lane.arguments() + ["--exit-when-acked", "--quiet"])
        #expect(flushed.status == 0 && !flushed.output.contains("gate "), "late reads get no decision: \(flushed.output)")
        let stays = try await f.sessions("沪D12345")
        #expect(stays.count == 1, "\(stays)")
        #expect(stays.first.map { !$0.open && $0.hasEnteredAt && $0.hasExitedAt && $0.paidFen == 0 && $0.grossFen == 0 } == true)
        if let stay = stays.first {
            #expect(abs(stay.exitedAt.date.timeIntervalSince(stay.enteredAt.date) - 3_600) < 5)
        }

        // The same event delivered three times (a redelivery after a lost ack): stored and decided once
        // (in-process, after the client's runs: it moves the device's commit point to 1,000).
        var event = Linli_Device_V1_Event()
        event.seq = 1_000
        event.deviceTimeMs = Int64(exactly: (Date().timeIntervalSince1970 * 1000).rounded(.down)) ?? 0
        event.plate = .with {
            $0.laneCode = "in"
            $0.plate = "沪C99999"
        }
        let incoming = DeviceStore.IncomingEvent(
            seq: 1_000, kind: "plate", deviceTime: Date(), late: false, body: .init(bytes: try event.serializedBytes() as [UInt8]), event: event)
        let store = DeviceStore(database: f.server.app.database)
        let generation: Int32 = try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            let rows = try await connection.query(
                "SELECT generation FROM devices WHERE id = \(UUID(uuidString: f.camera.id)!)", logger: f.server.app.logger)
            for try await g in rows.decode(Int32.self) { return g }
            return 0
        }
        var answers = 0
        for _ in 0..<3 {
            let stored = try await store.ingest(
                .init(device: DeviceID(UUID(uuidString: f.camera.id)!), generation: generation, events: [incoming], access: [], upTo: 1_000),
                tenant: f.demo.tenant, handler: ParkingGate(), logger: f.server.app.logger)
            answers += stored?.replies.count ?? 0
        }
        #expect(answers == 1)
        #expect(try await f.sessions("沪C99999").count == 1)

    }

    @Test("A-3: coupons are bought ahead on the ledger, stacked in order, and two exits at once redeem each once")
    func coupons() async throws {
        let f = try await ParkingFixture.make(try await TestServer.shared.value)
        let second = try await f.server.registerDevice(f.demo, as: f.manager, kind: .barrier)
        try await f.lane("out2", .exit, on: second)
        let merchant = try await f.parking.createMerchant(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = f.demo.community.description; $0.name = "邻里超市"
            }, metadata: f.manager)
        func batch(_ kind: Linli_Parking_V1_CouponKind, _ value: Int64, price: Int64) async throws -> Linli_Parking_V1_CouponBatch {
            try await f.parking.buyCoupons(
                .with {
                    $0.requestID = UUID().uuidString
                    $0.merchantID = merchant.id
                    $0.kind = kind
                    $0.value = value
                    $0.priceFen = price
                    $0.quantity = 5
                    $0.validDays = 30
                    $0.method = .wechat
                }, metadata: f.manager)
        }
        let time = try await batch(.time, 60, price: 300)
        let money = try await batch(.money, 1_000, price: 800)
        for id in [time.id, money.id] {
            _ = try await f.parking.issueCoupon(
                .with {
                    $0.requestID = UUID().uuidString; $0.batchID = id; $0.plate = "沪E12345"
                }, metadata: f.manager)
        }
        // Bought: 5 × 300 + 5 × 800 held for the merchant.
        _ = try await f.read(["沪E12345"], at: "in")
        try await f.backdate("沪E12345", minutes: 149)
        // 150 min = 1100; 60 min off → 700; 1000 off → 0: the barrier opens on the coupons.
        let quote = try await f.quote("沪E12345")
        #expect(quote.dueFen == 0 && quote.grossFen == 1_100 && quote.couponOffFen == 1_100)
        async let a = f.read(["沪E12345"], at: "out")
        async let b = f.read(["沪E12345"], at: "out2", on: second)
        let gates = try await a + b
        #expect(gates.filter { $0.contains("OPEN") }.count == 1, "\(gates)")
        let used = try await f.parking.listCoupons(
            .with {
                $0.communityID = f.demo.community.description; $0.plate = "沪E12345"
            }, metadata: f.manager)
        #expect(used.coupons.count == 2 && used.coupons.allSatisfy { $0.status == .used })
        #expect(used.coupons.map(\.offFen).sorted() == [400, 700])
        // The merchant's liability went down by the two prices, once.
        let balance: Int64 = try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            let rows = try await connection.query(
                "SELECT credits_fen - debits_fen FROM ledger_accounts WHERE kind = 'deposit' AND subtype = \("parking_coupon:" + merchant.id)",
                logger: f.server.app.logger)
            for try await value in rows.decode(Int64.self) { return value }
            return -1
        }
        #expect(balance == 5 * 300 + 5 * 800 - 300 - 800)
        #expect(try await f.sessions("沪E12345").filter(\.open).isEmpty)

        // Another tenant's batch does not exist for this tenant.
        let other = try await ParkingFixture.make(f.server)
        await #expect(throws: RPCError.self) {
            _ = try await other.parking.issueCoupon(
                .with {
                    $0.requestID = UUID().uuidString; $0.batchID = time.id; $0.plate = "沪E12345"
                }, metadata: other.manager)
        }
        do {
            _ = try await other.parking.issueCoupon(
                .with {
                    $0.requestID = UUID().uuidString; $0.batchID = time.id; $0.plate = "沪E12345"
                }, metadata: other.manager)
        } catch let error as RPCError {
            #expect(error.code == .notFound)
        }
    }

    @Test(
        "A-4 over the wire: a black-listed visitor with a registration is refused; a monthly card near its end is warned; renewals post to the ledger"
    )
    func ladder() async throws {
        let f = try await ParkingFixture.make(try await TestServer.shared.value)
        let community = f.demo.community.description
        _ = try await f.parking.addListEntry(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = community; $0.plate = "沪F12345"; $0.list = .black; $0.reason = "欠费"
            },
            metadata: f.manager)
        // The black-listed car even holds a visitor registration: black wins.
        let host = try await makeResident(f.server, f.demo, manager: f.manager, name: "业主甲", number: "101")
        let visitor = try await f.parking.registerVisitorCar(
            .with {
                $0.requestID = UUID().uuidString
                $0.lotID = f.lot.id
                $0.plate = "沪F12345"
                $0.residentID = host
                $0.validUntil = .init(date: Date().addingTimeInterval(3_600))
            }, metadata: f.manager)
        #expect(visitor.freeMinutes == 120)
        let permit = try await f.parking.issuePermit(
            .with {
                $0.requestID = UUID().uuidString
                $0.communityID = community
                $0.plate = "沪G12345"
                $0.kind = .monthly
                $0.validUntil = .init(date: Date().addingTimeInterval(3 * 86_400 + 3_600))
                $0.monthlyFeeFen = 30_000
            }, metadata: f.manager)
        let gates = try await f.read(["沪F12345", "沪G12345"], at: "in")
        #expect(gates.count == 2)
        #expect(gates.first { $0.contains("seq 1 ") }?.contains("CLOSED blacklisted") == true, "\(gates)")
        #expect(gates.first { $0.contains("seq 2 ") }.map { $0.contains("OPEN monthly_expiring") && $0.contains("月卡剩余3天") } == true, "\(gates)")
        let renewed = try await f.parking.renewPermit(
            .with {
                $0.requestID = UUID().uuidString; $0.permitID = permit.id; $0.months = 2; $0.method = .cash
            }, metadata: f.manager)
        #expect(renewed.payment.amountFen == 60_000 && renewed.payment.receiptNo.hasPrefix("P"))
        #expect(renewed.permit.validUntil.date.timeIntervalSince(permit.validUntil.date) > 58 * 86_400)
        let report = try await f.parking.getParkingReport(
            .with {
                $0.lotID = f.lot.id; $0.from = ParkingFixture.today; $0.to = ParkingFixture.today
            }, metadata: f.manager)
        #expect(report.monthlyRevenueFen == 60_000)
    }

    @Test(
        "reservations: a reserved car enters a lane closed to temporary cars and uses its reservation once; a held space is never reserved twice at once; residents reserve and see their own"
    )
    func reservations() async throws {
        let f = try await ParkingFixture.make(try await TestServer.shared.value)
        let community = f.demo.community.description
        let base = BaseDataClient(wrapping: f.server.client)
        let host = try await makeResident(f.server, f.demo, manager: f.manager, name: "业主乙", number: "102", user: "resident1")
        let neighbour = try await makeResident(f.server, f.demo, manager: f.manager, name: "邻居丙", number: "103", relation: .renter)
        let space = try await base.createParkingSpace(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = community; $0.code = "P1-007"; $0.kind = .temporary
            }, metadata: f.manager
        ).space.id
        _ = try await f.parking.configureSpace(
            .with {
                $0.requestID = UUID().uuidString; $0.spaceID = space; $0.lotID = f.lot.id
            }, metadata: f.manager)
        _ = try await f.parking.addLane(
            .with {
                $0.requestID = UUID().uuidString
                $0.lotID = f.lot.id
                $0.deviceID = f.camera.id
                $0.code = "vip"
                $0.name = "业主通道"
                $0.direction = .entry
                $0.tempCarsRefused = true
            }, metadata: f.manager)
        let resident = try await f.server.login(f.demo, "resident1")
        func reserve(
            _ plate: String, _ kind: Linli_Parking_V1_ReservationKind, space: String = "", resident residentID: String = "",
            from: TimeInterval = 0, hours: Double = 2, as caller: Metadata
        ) async throws -> Linli_Parking_V1_Reservation {
            try await f.parking.reserveSpace(
                .with {
                    $0.requestID = UUID().uuidString
                    $0.lotID = f.lot.id
                    $0.plate = plate
                    $0.kind = kind
                    $0.spaceID = space
                    $0.residentID = residentID
                    $0.startsAt = .init(date: Date().addingTimeInterval(from))
                    $0.endsAt = .init(date: Date().addingTimeInterval(from + hours * 3_600))
                }, metadata: caller)
        }
        // The resident reserves the space for a visitor, for themselves.
        let visitor = try await reserve("沪J12345", .visitor, space: space, as: resident)
        #expect(visitor.state == .reserved && visitor.residentID == host && visitor.freeMinutes == 120 && visitor.spaceID == space)
        // The space is held: an overlapping reservation of it is refused, a later one is not.
        #expect(
            await rpcCode { try await reserve("沪J54321", .nonVisitor, space: space, resident: neighbour, from: 3_600, as: f.manager) }
                == .alreadyExists)
        let later = try await reserve("沪J54321", .nonVisitor, space: space, resident: neighbour, from: 3 * 3_600, as: f.manager)
        #expect(later.state == .reserved && later.freeMinutes == 0)
        let removal = try await reserve("沪K67890", .nonVisitor, resident: neighbour, as: f.manager)
        // A resident acts for themselves only.
        #expect(await rpcCode { try await reserve("沪K11111", .visitor, resident: UUID().uuidString, as: resident) } == .permissionDenied)

        // At the lane closed to temporary cars: a stranger is refused, the reserved cars open.
        let gates = try await f.read(["沪K00001", "沪J12345", "沪K67890"], at: "vip")
        #expect(gates.count == 3, "\(gates)")
        #expect(gates.first { $0.contains("seq 1 ") }?.contains("CLOSED temp_refused") == true, "\(gates)")
        #expect(gates.first { $0.contains("seq 2 ") }?.contains("OPEN reserved") == true, "\(gates)")
        #expect(gates.first { $0.contains("seq 3 ") }?.contains("OPEN reserved") == true, "\(gates)")
        let stay = try await f.sessions("沪J12345")
        #expect(stay.count == 1 && stay.first?.carClass == .visitor, "\(stay)")
        #expect(try await f.sessions("沪K67890").first?.carClass == .temp)

        // The resident sees their own reservation used by that stay; staff see all three.
        let own = try await f.parking.listReservations(.with { $0.lotID = f.lot.id }, metadata: resident).reservations
        #expect(own.map(\.id) == [visitor.id], "\(own)")
        #expect(own.first?.state == .used && own.first?.sessionID == stay.first?.id)
        let all = try await f.parking.listReservations(.with { $0.lotID = f.lot.id }, metadata: f.manager).reservations
        #expect(Set(all.map(\.id)) == [visitor.id, later.id, removal.id])
        let waiting = try await f.parking.listReservations(
            .with {
                $0.lotID = f.lot.id; $0.activeOnly = true
            }, metadata: f.manager)
        #expect(waiting.reservations.map(\.id) == [later.id])

        // A used reservation cannot be cancelled; a waiting one can, once, and then no longer opens.
        let cancel = { (id: String, caller: Metadata) in
            try await f.parking.cancelReservation(
                .with {
                    $0.requestID = UUID().uuidString; $0.reservationID = id
                }, metadata: caller)
        }
        #expect(await rpcCode { try await cancel(visitor.id, resident) } == .failedPrecondition)
        let cancelled = try await cancel(later.id, f.manager)
        #expect(cancelled.state == .cancelled && cancelled.hasCancelledAt)
        // Cancelled, the space is free for that window again.
        _ = try await reserve("沪J54321", .nonVisitor, space: space, resident: neighbour, from: 3 * 3_600, as: f.manager)

        // Bad input names its field; another tenant's lot is not found.
        #expect(await rpcError { try await reserve("沪J22222", .unspecified, resident: host, as: f.manager) }?.message.contains("kind") == true)
        #expect(
            await rpcError { try await reserve("沪J22222", .visitor, resident: host, hours: -1, as: f.manager) }?.message.contains("ends_at") == true)
        #expect(
            await rpcError { try await reserve("沪J22222", .visitor, resident: host, from: -86_400, as: f.manager) }?.message.contains("starts_at")
                == true)
        #expect(
            await rpcError { try await reserve("沪J22222", .visitor, resident: host, hours: 200, as: f.manager) }?.message.contains("ends_at") == true)
        let other = try await ParkingFixture.make(f.server)
        #expect(await rpcCode { try await reserve("沪J22222", .visitor, resident: host, as: other.manager) } == .notFound)
        #expect(await rpcCode { try await cancel(removal.id, other.manager) } == .notFound)
    }

    @Test("a payment that reaches a session already closed is refunded at once; bad input names its field")
    func latePaymentAndBadInput() async throws {
        let f = try await ParkingFixture.make(try await TestServer.shared.value)
        _ = try await f.read(["沪H12345"], at: "in")
        let session = try await f.sessions("沪H12345")[0]
        _ = try await f.parking.closeSession(
            .with {
                $0.requestID = UUID().uuidString; $0.sessionID = session.id; $0.note = "拖车"
            }, metadata: f.manager)
        let late = try await f.pay(session.id, 500)
        #expect(late.payment.amountFen == 500 && late.payment.refundedFen == 500)

        func field(_ body: () async throws -> Void) async -> String {
            do {
                try await body()
                return "no error"
            } catch let error as RPCError {
                return error.message
            } catch {
                return "\(error)"
            }
        }
        let plate = await field {
            _ = try await f.parking.quoteSession(
                .with {
                    $0.lotID = f.lot.id; $0.plate = "ABC"
                }, metadata: f.manager)
        }
        #expect(plate.contains("plate"))
        let rule = await field {
            _ = try await f.parking.setFeeRule(
                .with {
                    $0.requestID = UUID().uuidString
                    $0.lotID = f.lot.id
                    $0.name = "坏规则"
                    $0.rule = .with {
                        $0.kind = .dayNight
                        $0.tariff = .with {
                            $0.firstBlockMinutes = 60; $0.firstBlockFen = 200
                        }
                    }
                }, metadata: f.manager)
        }
        #expect(rule.contains("rule.night"), "\(rule)")
        let other = try await ParkingFixture.make(f.server)
        let foreign = await field {
            _ = try await other.parking.listSessions(.with { $0.lotID = f.lot.id }, metadata: other.manager)
        }
        #expect(foreign.contains("not found") || foreign.contains("lot"), "\(foreign)")
    }
}
