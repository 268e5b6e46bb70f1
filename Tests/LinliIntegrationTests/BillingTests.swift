import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliServer
import LinliTenancy
import PostgresNIO
import SwiftProtobuf
import Testing

@Suite("Billing on the ledger")
struct BillingTests {
    typealias Client = Linli_Billing_V1_BillingService.Client<HTTP2ClientTransport.Posix>

    struct Books {
        let server: TestServer
        let demo: DemoTenant
        let manager: Metadata
        let cashier: Metadata
        let billing: Client
        let rooms: [String]  // 1栋101 (89.50 m²), 1栋102 (120.05 m²), 1栋103 (60 m², from Jan 16)
        let propertyFee: String
        let garbageFee: String

        func generate(_ month: String) async throws -> Linli_Billing_V1_GenerateBillsResponse {
            var request = Linli_Billing_V1_GenerateBillsRequest()
            request.requestID = UUID().uuidString
            request.communityID = demo.community.description
            request.month = month
            return try await billing.generateBills(request, metadata: manager)
        }

        func bind(_ item: String, _ rooms: [String], from: String) async throws -> Int32 {
            try await Self.bind(billing, manager, item, rooms, from: from)
        }

        static func bind(_ billing: Client, _ manager: Metadata, _ item: String, _ rooms: [String], from: String) async throws -> Int32 {
            var request = Linli_Billing_V1_BindFeeItemRequest()
            request.requestID = UUID().uuidString
            request.feeItemID = item
            request.roomIds = rooms
            request.startsOn = from
            return try await billing.bindFeeItem(request, metadata: manager).bound
        }

        func pay(
            _ room: Int, _ methods: [(Linli_Billing_V1_PaymentMethod, Int64)], bills: [String] = [],
            requestID: String = UUID().uuidString
        ) async throws -> Linli_Billing_V1_PayResponse {
            var request = Linli_Billing_V1_PayRequest()
            request.requestID = requestID
            request.roomID = rooms[room]
            request.billIds = bills
            request.methods = methods.map { method, amount in
                .with {
                    $0.method = method; $0.amountFen = amount
                }
            }
            return try await billing.pay(request, metadata: cashier)
        }

        func bills(_ room: Int, openOnly: Bool = false) async throws -> Linli_Billing_V1_ListBillsResponse {
            var request = Linli_Billing_V1_ListBillsRequest()
            request.roomID = rooms[room]
            request.openOnly = openOnly
            return try await billing.listBills(request, metadata: cashier)
        }

        func check() async throws -> Linli_Billing_V1_CheckLedgerResponse {
            var request = Linli_Billing_V1_CheckLedgerRequest()
            request.communityID = demo.community.description
            return try await billing.checkLedger(request, metadata: manager)
        }

        func sql(_ query: PostgresQuery) async throws {
            try await server.app.database.tenantTransaction(demo.tenant) { connection in
                try await connection.query(query, logger: server.app.database.logger)
            }
        }

        /// The one integer `query` selects.
        func int(_ query: PostgresQuery) async throws -> Int64 {
            try await server.app.database.tenantTransaction(demo.tenant) { connection in
                for try await value in try await connection.query(query, logger: server.app.database.logger).decode(Int64.self) { return value }
                return -1
            }
        }

        static func open() async throws -> Books {
            let server = try await TestServer.shared.value
            let demo = try await server.newTenant()
            let manager = try await server.login(demo, "manager")
            let base = BaseDataClient(wrapping: server.client)
            let imported = try await importCSV(
                base, demo, .rooms,
                [
                    "building,number,area_m2,kind", "1栋,101,89.50,residence",
                    "1栋,102,120.05,residence", "1栋,103,60,residence",
                ], metadata: manager)
            #expect(imported.committed)
            var list = Linli_Property_V1_ListRoomsRequest()
            list.communityID = demo.community.description
            let rooms = try await base.listRooms(list, metadata: manager).rooms.sorted { $0.number < $1.number }.map(\.id)
            let billing = Client(wrapping: server.client)
            var item = Linli_Billing_V1_CreateFeeItemRequest()
            item.requestID = UUID().uuidString
            item.communityID = demo.community.description
            item.name = "物业费"
            item.kind = .monthly
            item.rule = .area
            item.unitPriceFen = 235  // 2.35 元 per m² per month
            item.dueDay = 10
            let propertyFee = try await billing.createFeeItem(item, metadata: manager).feeItem.id
            item.requestID = UUID().uuidString
            item.name = "垃圾清运费"
            item.rule = .fixed
            item.unitPriceFen = 1_000
            let garbageFee = try await billing.createFeeItem(item, metadata: manager).feeItem.id

            func bind(_ item: String, _ rooms: [String], from: String) async throws -> Int32 {
                try await Books.bind(billing, manager, item, rooms, from: from)
            }
            #expect(try await bind(propertyFee, [rooms[0], rooms[1]], from: "2026-01-01") == 2)
            #expect(try await bind(propertyFee, [rooms[2]], from: "2026-01-16") == 1)
            #expect(try await bind(garbageFee, [rooms[0]], from: "2026-01-01") == 1)
            #expect(await rpcCode { try await bind(propertyFee, [rooms[0]], from: "2026-03-01") } == .alreadyExists)
            return Books(
                server: server, demo: demo, manager: manager, cashier: try await server.login(demo, "cashier"), billing: billing,
                rooms: rooms, propertyFee: propertyFee, garbageFee: garbageFee)
        }
    }

    @Test("a month's bills are generated once, by area with proration rounded half up once; the books check out")
    func generation() async throws {
        let books = try await Books.open()
        let january = try await books.generate("2026-01")
        // 8950 × 235 / 100 = 21032.5 → 21033; 12005 × 2.35 = 28211.75 → 28212; 6000 × 2.35 × 16/31 = 7277.4 → 7277; 1000.
        #expect(january.created == 4 && january.alreadyBilled == 0 && january.chargedFen == 21_033 + 28_212 + 7_277 + 1_000)
        let again = try await books.generate("2026-01")
        #expect(again.created == 0 && again.alreadyBilled == 4 && again.chargedFen == 0)
        let prorated = try await books.bills(2).bills
        #expect(
            prorated.map(\.amountFen) == [7_277] && prorated.first?.billedDays == 16 && prorated.first?.periodDays == 31
                && prorated.first?.dueOn == "2026-01-10")
        let check = try await books.check()
        #expect(check.balanced && check.debitsFen == 57_522 && check.creditsFen == 57_522 && check.transfers == 4 && check.bills == 4)

        // February: January's accounts are open, so its charges post at once; room 102's garbage
        // fee is new, its account opened when it was bound, and its bill is charged too (exactly once).
        #expect(try await books.bind(books.garbageFee, [books.rooms[1]], from: "2026-02-01") == 1)
        let garbageRoom = try #require(UUID(uuidString: books.rooms[1])), garbage = try #require(UUID(uuidString: books.garbageFee))
        let opened = try await books.int(
            """
            SELECT count(*)::int8 FROM ledger_accounts
            WHERE kind = 'receivable' AND room_id = \(garbageRoom) AND fee_item_id = \(garbage) AND debits_fen = 0
            """)
        #expect(opened == 1)
        // Room 103's garbage fee bound as before that rule, with no account open: the run opens it
        // and charges that bill by its second statement.
        let older = try #require(UUID(uuidString: books.rooms[2]))
        let inserted = try await books.int(
            """
            WITH bound AS (INSERT INTO fee_bindings (id, fee_item_id, room_id, starts_on) VALUES (uuid_v7(), \(garbage), \(older), '2026-02-01')
                           RETURNING 1)
            SELECT count(*)::int8 FROM bound
            """)
        #expect(inserted == 1)
        let february = try await books.generate("2026-02")
        #expect(february.created == 6 && february.chargedFen == 21_033 + 28_212 + 14_100 + 1_000 + 1_000 + 1_000)
        let after = try await books.check()
        #expect(after.balanced && after.debitsFen == 57_522 + 66_345 && after.transfers == 10 && after.bills == 10)
        #expect(try await books.bills(2).bills.map(\.amountFen).sorted() == [1_000, 7_277, 14_100])
        #expect(try await books.bills(1).bills.map(\.amountFen).sorted() == [1_000, 28_212, 28_212])

        var bad = Linli_Billing_V1_GenerateBillsRequest()
        bad.requestID = UUID().uuidString
        bad.communityID = books.demo.community.description
        bad.month = "2026-13"
        #expect(await rpcError { try await books.billing.generateBills(bad, metadata: books.manager) }?.message.hasPrefix("month:") == true)
        #expect(await rpcCode { try await books.billing.generateBills(bad, metadata: books.cashier) } == .permissionDenied)
    }

    @Test("one payment settles several bills with several methods; overpayment goes to prepaid, which pays later; receipts have no gaps")
    func payments() async throws {
        let books = try await Books.open()
        _ = try await books.generate("2026-01")
        let payID = UUID().uuidString
        let first = try await books.pay(0, [(.wechat, 20_000), (.cash, 5_000)], requestID: payID)
        #expect(first.settledFen == 22_033 && first.toPrepaidFen == 2_967 && first.totalFen == 25_000)
        #expect(first.allocations.map(\.amountFen).reduce(0, +) == 22_033 && Set(first.allocations.map(\.method)) == [.wechat, .cash])
        #expect(first.receiptNo.hasSuffix("-000001"))
        // A retry replays the receipt and moves no money.
        #expect(try await books.pay(0, [(.wechat, 20_000), (.cash, 5_000)], requestID: payID).receiptNo == first.receiptNo)
        #expect(try await books.bills(0, openOnly: true).bills.isEmpty)
        var balance = Linli_Billing_V1_GetPrepaidBalanceRequest()
        balance.roomID = books.rooms[0]
        #expect(try await books.billing.getPrepaidBalance(balance, metadata: books.cashier).balanceFen == 2_967)

        _ = try await books.generate("2026-02")
        #expect(try await books.bills(0, openOnly: true).openFen == 22_033)
        #expect(await rpcCode { try await books.pay(0, [(.prepaid, 5_000)]) } == .failedPrecondition)
        #expect(await rpcError { try await books.pay(0, [(.cash, 30_000), (.prepaid, 100)]) }?.message.hasPrefix("methods:") == true)
        let second = try await books.pay(0, [(.prepaid, 2_967), (.alipay, 19_066)])
        #expect(second.settledFen == 22_033 && second.toPrepaidFen == 0 && second.receiptNo.hasSuffix("-000002"))
        #expect(try await books.billing.getPrepaidBalance(balance, metadata: books.cashier).balanceFen == 0)

        // Partial payment of one chosen bill; two cashiers paying it in full at once: one wins.
        let open = try await books.bills(1, openOnly: true).bills
        let partial = try await books.pay(1, [(.cash, 10_000)], bills: [open[0].id])
        #expect(partial.settledFen == 10_000 && partial.toPrepaidFen == 0)
        let rest = open[0].amountFen - 10_000
        let outcomes = await withTaskGroup(of: RPCError.Code?.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    do { _ = try await books.pay(1, [(.bankCard, rest)], bills: [open[0].id]); return nil } catch let error as RPCError {
                        return error.code
                    } catch { return .unknown }
                }
            }
            var all: [RPCError.Code?] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.filter { $0 == nil }.count == 1 && outcomes.contains(.failedPrecondition))
        let receipts = try await books.server.app.database.tenantTransaction(books.demo.tenant) { connection in
            var numbers: [String] = []
            for try await number in try await connection.query(
                "SELECT receipt_no FROM payments ORDER BY receipt_no",
                logger: books.server.app.database.logger
            ).decode(String.self) {
                numbers.append(String(number.suffix(6)))
            }
            return numbers
        }
        #expect(receipts == ["000001", "000002", "000003", "000004"])
        let check = try await books.check()
        #expect(check.balanced && check.billsOff == 0 && check.receivablesOff == 0)
    }

    @Test("the ledger is append-only, a prepaid balance cannot go negative, and the check catches books changed behind its back")
    func guards() async throws {
        let books = try await Books.open()
        _ = try await books.generate("2026-01")
        _ = try await books.pay(0, [(.cash, 30_000)])
        await #expect(throws: (any Error).self) { try await books.sql("UPDATE ledger_transfers SET amount_fen = 1") }
        await #expect(throws: (any Error).self) { try await books.sql("DELETE FROM ledger_transfers") }
        // A transfer's accounts exist while it does: one naming no account fails (with the other
        // legs of its statement), and an account is never deleted, re-keyed or truncated.
        let transfers = try await books.int("SELECT count(*)::int8 FROM ledger_transfers")
        let missing = await #expect(throws: LinliError.self) {
            try await books.sql(
                """
                INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind)
                SELECT gen_random_uuid(), c.id, p.id, 100, 'topup' FROM ledger_accounts p, ledger_accounts c
                WHERE p.kind = 'prepaid' AND c.kind = 'channel' AND c.subtype = 'cash'
                UNION ALL SELECT gen_random_uuid(), gen_random_uuid(), p.id, 100, 'topup' FROM ledger_accounts p WHERE p.kind = 'prepaid'
                """)
        }
        #expect(missing?.code == .failedPrecondition && (missing?.cause as? PSQLError)?.serverInfo?[.sqlState] == "23503")
        #expect(try await books.int("SELECT count(*)::int8 FROM ledger_transfers") == transfers)
        for statement in [
            "DELETE FROM ledger_accounts WHERE kind = 'channel'", "UPDATE ledger_accounts SET id = gen_random_uuid() WHERE kind = 'channel'",
            "TRUNCATE ledger_accounts CASCADE", "TRUNCATE ledger_transfers",
        ] {
            let refused = await #expect(throws: LinliError.self) { try await books.sql(PostgresQuery(unsafeSQL: statement)) }
            #expect((refused?.cause as? PSQLError)?.serverInfo?[.sqlState] == "P0001", "\(statement)")
        }
        // A bill's room and fee item are of its community (checked per statement): a bill naming
        // another community fails with the rest of its statement; a billed room or item is kept.
        let other = UUID()
        try await books.sql("INSERT INTO communities (id, name) VALUES (\(other), '别的小区')")
        let bills = try await books.int("SELECT count(*)::int8 FROM bills")
        for stray in [
            """
            SELECT community_id, room_id, fee_item_id, DATE '2030-01-01' FROM bills
            UNION ALL SELECT '\(other)', room_id, fee_item_id, DATE '2031-01-01' FROM bills
            """,
            "SELECT community_id, gen_random_uuid(), fee_item_id, DATE '2030-01-01' FROM bills LIMIT 1",
        ] {
            let refused = await #expect(throws: LinliError.self) {
                try await books.sql(
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO bills (id, community_id, room_id, fee_item_id, period_start, period_end, billed_days, period_days, amount_fen,
                                               due_on, entry_id)
                            SELECT gen_random_uuid(), community_id::uuid, room_id, fee_item_id, start, start + 30, 31, 31, 100, start + 9, gen_random_uuid()
                            FROM (\(stray)) s (community_id, room_id, fee_item_id, start)
                            """))
            }
            #expect((refused?.cause as? PSQLError)?.serverInfo?[.sqlState] == "23503", "\(stray)")
        }
        #expect(try await books.int("SELECT count(*)::int8 FROM bills") == bills)
        let billedRoom = try #require(UUID(uuidString: books.rooms[0])), item = try #require(UUID(uuidString: books.propertyFee))
        let kept: [(PostgresQuery, String)] = [
            ("DELETE FROM rooms WHERE id = \(billedRoom)", "has bills"),
            ("UPDATE rooms SET community_id = \(other) WHERE id = \(billedRoom)", "has bills"),
            ("DELETE FROM fee_items WHERE id = \(item)", "has bills"),
            ("UPDATE fee_items SET community_id = \(other) WHERE id = \(item)", "has bills"),
            ("TRUNCATE fee_items CASCADE", "while bills exist"),
            ("UPDATE bills SET room_id = (SELECT id FROM rooms WHERE id <> room_id LIMIT 1)", "do not change"),
        ]
        for (statement, message) in kept {
            let refused = await #expect(throws: LinliError.self) { try await books.sql(statement) }
            let info = (refused?.cause as? PSQLError)?.serverInfo
            #expect(info?[.message]?.contains(message) == true, "\(statement.sql): \(info?[.message] ?? "no error")")
        }
        // A room no bill names may still go.
        let spare = UUID()
        try await books.sql(
            """
            INSERT INTO rooms (id, community_id, building_id, number, area_centi_m2, kind)
            SELECT \(spare), community_id, building_id, '999', 1000, 'residence' FROM rooms WHERE id = \(billedRoom)
            """)
        try await books.sql("DELETE FROM rooms WHERE id = \(spare)")
        #expect(try await books.int("SELECT count(*)::int8 FROM rooms WHERE id = \(spare)") == 0)
        // Taking 10,000 fen out of a 7,967 fen prepaid balance fails the whole transaction.
        await #expect(throws: (any Error).self) {
            try await books.sql(
                """
                INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind)
                SELECT gen_random_uuid(), p.id, c.id, 10000, 'withdraw'
                FROM ledger_accounts p, ledger_accounts c WHERE p.kind = 'prepaid' AND c.kind = 'channel' AND c.subtype = 'cash'
                """)
        }
        #expect(try await books.check().balanced)
        try await books.sql("UPDATE ledger_accounts SET debits_fen = debits_fen + 1 WHERE kind = 'channel'")
        let tampered = try await books.check()
        #expect(!tampered.balanced && tampered.accountsOff == 1 && tampered.debitsFen == tampered.creditsFen + 1)
    }
    @Test("prepaid balances pay bills fallen due, oldest first and partly if need be, never twice even with three runs at once; frozen accounts wait")
    func prepaidOffsets() async throws {
        let books = try await Books.open()
        _ = try await books.generate("2026-01")
        func topUp(_ room: Int, _ fen: Int64) async throws -> Int64 {
            var request = Linli_Billing_V1_TopUpPrepaidRequest()
            request.requestID = UUID().uuidString
            request.roomID = books.rooms[room]
            request.method = .wechat
            request.amountFen = fen
            return try await books.billing.topUpPrepaid(request, metadata: books.cashier).balanceFen
        }
        func frozen(_ room: Int, _ frozen: Bool) async throws {
            var request = Linli_Billing_V1_SetPrepaidFrozenRequest()
            request.requestID = UUID().uuidString
            request.roomID = books.rooms[room]
            request.frozen = frozen
            _ = try await books.billing.setPrepaidFrozen(request, metadata: books.manager)
        }
        func offset() async throws -> Linli_Billing_V1_RunPrepaidOffsetResponse {
            var request = Linli_Billing_V1_RunPrepaidOffsetRequest()
            request.requestID = UUID().uuidString
            return try await books.billing.runPrepaidOffset(request, metadata: books.manager)
        }
        func withdraw(_ room: Int, _ fen: Int64) async throws -> Int64 {
            var request = Linli_Billing_V1_WithdrawPrepaidRequest()
            request.requestID = UUID().uuidString
            request.roomID = books.rooms[room]
            request.method = .cash
            request.amountFen = fen
            return try await books.billing.withdrawPrepaid(request, metadata: books.cashier).balanceFen
        }
        #expect(try await topUp(0, 10_000) == 10_000)
        #expect(try await topUp(1, 30_000) == 30_000)
        #expect(try await topUp(2, 5_000) == 5_000)
        try await frozen(0, true)
        #expect(await rpcCode { try await withdraw(0, 1) } == .failedPrecondition)

        // Three runs at once: room 102 pays 28,212 in full, room 103 pays 5,000 of 7,277; frozen 101 waits.
        let runs = try await withThrowingTaskGroup(of: Linli_Billing_V1_RunPrepaidOffsetResponse.self) { group in
            for _ in 0..<3 { group.addTask { try await offset() } }
            return try await group.reduce(into: [Linli_Billing_V1_RunPrepaidOffsetResponse]()) { $0.append($1) }
        }
        #expect(runs.map(\.offsetFen).reduce(0, +) == 28_212 + 5_000 && runs.map(\.offsets).reduce(0, +) == 2)
        #expect(try await offset().offsets == 0)
        #expect(try await books.bills(1, openOnly: true).bills.isEmpty)
        #expect(try await books.bills(2, openOnly: true).openFen == 2_277)
        #expect(try await books.bills(0, openOnly: true).openFen == 22_033)

        #expect(try await withdraw(1, 1_788) == 0)
        #expect(await rpcCode { try await withdraw(1, 1) } == .failedPrecondition)
        try await frozen(0, false)
        let thawed = try await offset()
        #expect(thawed.offsetFen == 10_000)
        // Oldest due first within the room: both January bills fall due on the 10th; 10,000 covers one in part.
        #expect(try await books.bills(0, openOnly: true).openFen == 12_033)

        var arrears = Linli_Billing_V1_GetArrearsRequest()
        arrears.communityID = books.demo.community.description
        let byRoom = try await books.billing.getArrears(arrears, metadata: books.cashier)
        #expect(byRoom.totalFen == 12_033 + 2_277 && byRoom.rows.map(\.label) == ["1栋101", "1栋103"])
        #expect(byRoom.rows.allSatisfy { $0.bucketsFen.count == 5 && $0.bucketsFen.reduce(0, +) == $0.totalFen })
        arrears.byBuilding = true
        #expect(try await books.billing.getArrears(arrears, metadata: books.cashier).rows.map(\.label) == ["1栋"])
        #expect(try await books.check().balanced)
    }

    @Test("a voided receipt reverses its transfers and opens its bills again; a spent overpayment cannot be voided; reprints show both")
    func voids() async throws {
        let books = try await Books.open()
        _ = try await books.generate("2026-01")
        let paid = try await books.pay(1, [(.cash, 28_212)])
        var void = Linli_Billing_V1_VoidReceiptRequest()
        void.requestID = UUID().uuidString
        void.paymentID = paid.paymentID
        #expect(await rpcError { try await books.billing.voidReceipt(void, metadata: books.manager) }?.message.hasPrefix("reason:") == true)
        void.reason = "收款方式录错"
        #expect(await rpcCode { try await books.billing.voidReceipt(void, metadata: books.cashier) } == .permissionDenied)
        let voided = try await books.billing.voidReceipt(void, metadata: books.manager).receipt
        #expect(voided.void && voided.lines.map(\.amountFen) == [28_212, -28_212] && voided.lines.allSatisfy { $0.method == "cash" })
        #expect(try await books.bills(1, openOnly: true).openFen == 28_212)
        void.requestID = UUID().uuidString
        #expect(await rpcCode { try await books.billing.voidReceipt(void, metadata: books.manager) } == .failedPrecondition)

        // 40,000 paid for 28,212 puts 11,788 on prepaid; once that is withdrawn the receipt cannot be voided.
        let over = try await books.pay(1, [(.cash, 40_000)])
        #expect(over.toPrepaidFen == 11_788)
        var withdraw = Linli_Billing_V1_WithdrawPrepaidRequest()
        withdraw.requestID = UUID().uuidString
        withdraw.roomID = books.rooms[1]
        withdraw.method = .cash
        withdraw.amountFen = 11_788
        _ = try await books.billing.withdrawPrepaid(withdraw, metadata: books.cashier)
        void.requestID = UUID().uuidString
        void.paymentID = over.paymentID
        #expect(await rpcCode { try await books.billing.voidReceipt(void, metadata: books.manager) } == .failedPrecondition)
        var get = Linli_Billing_V1_GetReceiptRequest()
        get.paymentID = over.paymentID
        let reprint = try await books.billing.getReceipt(get, metadata: books.cashier).receipt
        #expect(
            !reprint.void && reprint.roomLabel == "1栋102" && reprint.lines.map(\.amountFen).reduce(0, +) == 40_000
                && reprint.lines.contains { $0.billID.isEmpty && $0.feeItemName == "预存款" })
        #expect(try await books.check().balanced)
    }
    @Test("summaries for a month, quarter and year, the cashiers' daily close and the national collection rate all come from the ledger")
    func reports() async throws {
        let books = try await Books.open()
        _ = try await books.generate("2026-01")
        #expect(try await books.generate("2026-02").chargedFen == 64_345)
        let both = try await books.pay(0, [(.cash, 50_000)])
        #expect(both.settledFen == 44_066 && both.toPrepaidFen == 5_934)
        let january = try #require(try await books.bills(1).bills.first { $0.periodStart == "2026-01-01" })
        let wechat = try await books.pay(1, [(.wechat, 28_212)], bills: [january.id])

        func summary(_ period: String) async throws -> Linli_Billing_V1_GetBillingSummaryResponse {
            var request = Linli_Billing_V1_GetBillingSummaryRequest()
            request.communityID = books.demo.community.description
            request.period = period
            return try await books.billing.getBillingSummary(request, metadata: books.manager)
        }
        let month = try await summary("2026-01")
        #expect(month.from == "2026-01-01" && month.to == "2026-01-31" && month.receivableFen == 57_522)
        #expect(month.collectedForPeriodFen == 22_033 + 28_212 && month.collectionRateBasisPoints == 8_734 && month.receivedFen == 0)
        let year = try await summary("2026")
        #expect(
            year.receivableFen == 121_867 && year.receivedFen == 72_278 && year.prepaidInFen == 5_934
                && year.prepaidBalanceFen == 5_934 && year.arrearsFen == 49_589)
        #expect(try await summary("2026-Q1").receivableFen == 121_867)
        #expect(await rpcError { try await summary("2026-Q5") }?.message.hasPrefix("period:") == true)

        var void = Linli_Billing_V1_VoidReceiptRequest()
        void.requestID = UUID().uuidString
        void.paymentID = wechat.paymentID
        void.reason = "重复收款"
        _ = try await books.billing.voidReceipt(void, metadata: books.manager)
        var close = Linli_Billing_V1_GetDailyCloseRequest()
        close.communityID = books.demo.community.description
        close.day = BusinessDay.demo.today()
        let day = try await books.billing.getDailyClose(close, metadata: books.cashier)
        let cashierID = try #require(books.demo.users["cashier"]).description
        let cash = try #require(day.rows.first { $0.cashierID == cashierID && $0.method == "cash" })
        #expect(cash.takenFen == 50_000 && cash.receipts == 1)
        #expect(day.rows.first { $0.cashierID == cashierID && $0.method == "wechat" }?.takenFen == 28_212)
        #expect(day.rows.first { $0.cashierID == books.demo.users["manager"]?.description }?.voidedFen == 28_212)
        #expect(day.netFen == 50_000)

        try await books.server.app.rollup.foldAll()
        let overview = try await books.server.platform.getNationalOverview(.init(), metadata: try await books.server.operatorLogin())
        let mine = try #require(overview.perTenant.first { $0.tenantSlug == books.demo.tenant.slug })
        #expect(mine.billingChargedFen == 121_867 && mine.billingCollectedFen == 44_066 && mine.collectionRateBasisPoints == 3_615)
        #expect(try await books.check().balanced)
    }
    @Test("a renovation deposit offsets a bill inside a payment, turns partly into prepaid and is refunded; it never goes below zero")
    func deposits() async throws {
        let books = try await Books.open()
        _ = try await books.generate("2026-01")
        var collect = Linli_Billing_V1_CollectDepositRequest()
        collect.requestID = UUID().uuidString
        collect.roomID = books.rooms[1]
        collect.kind = "renovation"
        collect.method = .cash
        collect.amountFen = 200_000
        #expect(try await books.billing.collectDeposit(collect, metadata: books.cashier).balanceFen == 200_000)
        collect.requestID = UUID().uuidString
        collect.kind = "Renovation!"
        #expect(await rpcError { try await books.billing.collectDeposit(collect, metadata: books.cashier) }?.message.hasPrefix("kind:") == true)

        // 押金冲应收: the deposit settles the bill together with cash; no change comes out of a deposit.
        var pay = Linli_Billing_V1_PayRequest()
        pay.requestID = UUID().uuidString
        pay.roomID = books.rooms[1]
        pay.methods = [
            .with {
                $0.method = .deposit; $0.amountFen = 20_000
            },
            .with {
                $0.method = .cash; $0.amountFen = 8_212
            },
        ]
        #expect(await rpcError { try await books.billing.pay(pay, metadata: books.cashier) }?.message.hasPrefix("deposit_kind:") == true)
        pay.depositKind = "renovation"
        let paid = try await books.billing.pay(pay, metadata: books.cashier)
        #expect(paid.settledFen == 28_212 && paid.toPrepaidFen == 0 && Set(paid.allocations.map(\.method)) == [.deposit, .cash])

        var convert = Linli_Billing_V1_ConvertDepositToPrepaidRequest()
        convert.requestID = UUID().uuidString
        convert.roomID = books.rooms[1]
        convert.kind = "renovation"
        convert.amountFen = 30_000
        #expect(try await books.billing.convertDepositToPrepaid(convert, metadata: books.cashier).balanceFen == 150_000)
        var balance = Linli_Billing_V1_GetPrepaidBalanceRequest()
        balance.roomID = books.rooms[1]
        #expect(try await books.billing.getPrepaidBalance(balance, metadata: books.cashier).balanceFen == 30_000)

        var refund = Linli_Billing_V1_RefundDepositRequest()
        refund.requestID = UUID().uuidString
        refund.roomID = books.rooms[1]
        refund.kind = "renovation"
        refund.method = .bankCard
        refund.amountFen = 150_001
        #expect(await rpcCode { try await books.billing.refundDeposit(refund, metadata: books.cashier) } == .permissionDenied)
        #expect(await rpcCode { try await books.billing.refundDeposit(refund, metadata: books.manager) } == .failedPrecondition)
        refund.requestID = UUID().uuidString
        refund.amountFen = 150_000
        #expect(try await books.billing.refundDeposit(refund, metadata: books.manager).balanceFen == 0)
        var list = Linli_Billing_V1_ListDepositsRequest()
        list.roomID = books.rooms[1]
        #expect(try await books.billing.listDeposits(list, metadata: books.cashier).deposits.map(\.balanceFen) == [0])
        #expect(try await books.check().balanced)
    }
    @Test("meter readings: usage is the rise, a lower reading needs a replacement, imports report every bad line, metered bills follow usage")
    func meters() async throws {
        let books = try await Books.open()
        var item = Linli_Billing_V1_CreateFeeItemRequest()
        item.requestID = UUID().uuidString
        item.communityID = books.demo.community.description
        item.name = "电费"
        item.kind = .monthly
        item.rule = .metered
        item.unitPriceFen = 62  // 0.62 元 per kWh
        #expect(await rpcError { try await books.billing.createFeeItem(item, metadata: books.manager) }?.message.hasPrefix("meter_kind:") == true)
        item.meterKind = .electricity
        let power = try await books.billing.createFeeItem(item, metadata: books.manager).feeItem
        var bind = Linli_Billing_V1_BindFeeItemRequest()
        bind.requestID = UUID().uuidString
        bind.feeItemID = power.id
        bind.roomIds = [books.rooms[0], books.rooms[1]]
        bind.startsOn = "2026-01-01"
        _ = try await books.billing.bindFeeItem(bind, metadata: books.manager)

        func read(_ room: Int, _ on: String, _ value: Int64, replacement: Bool = false, oldFinal: Int64 = 0) async throws
            -> Linli_Billing_V1_MeterReading
        {
            var request = Linli_Billing_V1_RecordMeterReadingRequest()
            request.requestID = UUID().uuidString
            request.roomID = books.rooms[room]
            request.kind = .electricity
            request.readOn = on
            request.valueCenti = value
            request.replacement = replacement
            request.oldFinalCenti = oldFinal
            return try await books.billing.recordMeterReading(request, metadata: try await books.server.login(books.demo, "technician")).reading
        }
        #expect(try await read(0, "2025-12-31", 100_000).usageCenti == 0)
        #expect(try await read(0, "2026-01-20", 130_050).usageCenti == 30_050)
        #expect(await rpcCode { try await read(0, "2026-01-25", 120_000) } == .failedPrecondition)
        #expect(await rpcError { try await read(0, "2026-01-10", 140_000) }?.message.hasPrefix("read_on:") == true)
        // A new meter starting at 0: usage is what the old one ran up to its final reading.
        let swap = try await read(0, "2026-01-28", 500, replacement: true, oldFinal: 131_000)
        #expect(swap.usageCenti == 950 && swap.previousCenti == 130_050)

        let csv = [
            "building,number,kind,read_on,value",
            "1栋,102,electricity,2025-12-31,5000",
            "1栋,102,electricity,2026-01-31,5200.5",
            "1栋,102,electricity,2026-01-15,5300",
            "1栋,999,electricity,2026-01-31,1",
            "1栋,102,steam,2026-01-31,1",
        ]
        let bad = try await importReadings(books, csv)
        #expect(!bad.committed && bad.errors.map(\.line) == [4, 5, 6] && bad.errors.map(\.column) == ["read_on", "number", "kind"])
        let good = try await importReadings(books, Array(csv.prefix(3)))
        #expect(good.committed && good.rows == 2)

        // January: room 101 used 300.50 + 9.50 kWh × 0.62 = 192.20 元; room 102 200.50 kWh → 124.31 元.
        _ = try await books.generate("2026-01")
        let bills0 = try await books.bills(0).bills.filter { $0.feeItemID == power.id }
        let bills1 = try await books.bills(1).bills.filter { $0.feeItemID == power.id }
        #expect(bills0.map(\.amountFen) == [19_220] && bills1.map(\.amountFen) == [12_431])
        #expect(try await books.check().balanced)
    }

    func importReadings(_ books: Books, _ lines: [String]) async throws -> Linli_Billing_V1_ImportMeterReadingsResponse {
        let request = StreamingClientRequest<Linli_Billing_V1_ImportMeterReadingsRequest>(metadata: books.manager) { writer in
            try await writer.write(
                .with {
                    $0.requestID = UUID().uuidString
                    $0.communityID = books.demo.community.description
                })
            for line in lines { try await writer.write(.with { $0.lines = [line] }) }
        }
        return try await books.billing.importMeterReadings(request: request) { try $0.message }
    }
}
