import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import SwiftProtobuf

/// The `linli.billing.v1.BillingService` RPCs.
public struct BillingService: Sendable {
    let fees = FeeStore()
    let cashier: PaymentStore
    let reports = BillingReportStore()
    let meters = MeterStore()
    let refunds = RefundStore()
    let handler: Handler

    /// `coupons`: the commerce module's fee coupons (`PayRequest.coupon_id`); nil refuses them.
    public init(database: Database, logger: Logger, coupons: (any FeeCoupons)? = nil) {
        handler = Handler(database: database, logger: logger)
        cashier = PaymentStore(coupons: coupons)
    }

    /// The largest amount one call may carry: 10 million 元.
    static let maxFen: Int64 = 1_000_000_000
}

extension BillingService: Linli_Billing_V1_BillingService.ServiceProtocol {
    public func createFeeItem(request: ServerRequest<Linli_Billing_V1_CreateFeeItemRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_CreateFeeItemResponse>
    {
        let m = request.message
        let kind = try ProtoEnum.decode(m.kind, FeeStore.Kind.self, field: "kind")
        let rule = try ProtoEnum.decode(m.rule, FeeStore.Rule.self, field: "rule")
        guard (0...Self.maxFen).contains(m.unitPriceFen) else { throw LinliError.invalid("unit_price_fen", "must be from 0 to \(Self.maxFen)") }
        guard (0...Self.maxFen).contains(m.surchargeFen) else { throw LinliError.invalid("surcharge_fen", "must be from 0 to \(Self.maxFen)") }
        guard rule == .rent || !m.tiers.isEmpty || m.unitPriceFen + m.surchargeFen > 0 else {
            throw LinliError.invalid("unit_price_fen", "the item must charge something")
        }
        guard rule != .rent || m.unitPriceFen == 0 else { throw LinliError.invalid("unit_price_fen", "rent is set per binding (amount_fen)") }
        guard rule != .rent || kind != .oneTime else { throw LinliError.invalid("kind", "rent is periodic") }
        guard rule != .metered || kind != .oneTime else { throw LinliError.invalid("kind", "metered items bill each period's usage") }
        guard (0...28).contains(m.dueDay) else { throw LinliError.invalid("due_day", "must be from 1 to 28") }
        guard (0...28).contains(m.cycleDay) else { throw LinliError.invalid("cycle_day", "must be from 1 to 28") }
        guard (0...100).contains(m.lateFeePer10KDaily) else {
            throw LinliError.invalid("late_fee_per_10k_daily", "must be from 0 to 100 (ten-thousandths a day)")
        }
        guard (0...365).contains(m.graceDays) else { throw LinliError.invalid("grace_days", "must be from 0 to 365") }
        guard (0...1000).contains(m.priority) else { throw LinliError.invalid("priority", "must be from 0 to 1000") }
        guard (0...10_000).contains(m.yearlyIncreaseBp) else { throw LinliError.invalid("yearly_increase_bp", "must be from 0 to 10000") }
        guard rule == .rent || m.yearlyIncreaseBp == 0 else { throw LinliError.invalid("yearly_increase_bp", "is only for rent") }
        var item = FeeStore.Item(
            id: UUIDv7.make(), community: try Input.id(m.communityID, field: "community_id"),
            name: try Input.text(m.name, field: "name", max: 40), kind: kind,
            rule: rule,
            unitPriceFen: m.unitPriceFen, surchargeFen: m.surchargeFen, dueDay: max(1, Int(m.dueDay)),
            meterKind: m.meterKind == .unspecified ? nil : try ProtoEnum.decode(m.meterKind, MeterStore.Kind.self, field: "meter_kind"))
        guard (item.rule == .metered) == (item.meterKind != nil) else {
            throw LinliError.invalid("meter_kind", item.rule == .metered ? "is required for a metered item" : "is only for metered items")
        }
        item.category =
            m.category == .unspecified
            ? (rule == .metered ? .utilities : rule == .rent ? .rent : .property)
            : try ProtoEnum.decode(m.category, FeeStore.Category.self, field: "category")
        item.cycleDay = max(1, Int(m.cycleDay))
        item.lateFeePer10kDaily = Int(m.lateFeePer10KDaily)
        item.graceDays = Int(m.graceDays)
        item.priority = m.priority == 0 ? 100 : Int(m.priority)
        item.yearlyIncreaseBP = Int(m.yearlyIncreaseBp)
        item.tiers = try Self.tiers(m.tiers, rule: rule)
        return try await handler.write(request, context) { [fees] call in
            var response = Linli_Billing_V1_CreateFeeItemResponse()
            response.feeItem = .init(try await fees.createItem(item, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func bindFeeItem(request: ServerRequest<Linli_Billing_V1_BindFeeItemRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_BindFeeItemResponse>
    {
        let m = request.message
        let item = try Input.id(m.feeItemID, field: "fee_item_id", as: IDTag.FeeItem.self).uuid
        let rooms: [RoomID] = try Input.ids(m.roomIds, field: "room_ids")
        let spaces = try Input.ids(m.parkingSpaceIds, field: "parking_space_ids", as: IDTag.ParkingSpace.self).map(\.uuid)
        guard (0...Self.maxFen).contains(m.amountFen) else { throw LinliError.invalid("amount_fen", "must be from 0 to \(Self.maxFen)") }
        let startsOn = try Input.localDate(m.startsOn, field: "starts_on")
        let endsOn = m.endsOn.isEmpty ? nil : try Input.localDate(m.endsOn, field: "ends_on")
        if let endsOn, endsOn < startsOn { throw LinliError.invalid("ends_on", "must not be before starts_on") }
        return try await handler.write(request, context) { [fees] call in
            var response = Linli_Billing_V1_BindFeeItemResponse()
            response.bound = Int32(
                clamping:
                    try await fees.bind(
                        item: item, rooms: rooms, spaces: spaces,
                        amountFen: m.amountFen == 0 ? nil : m.amountFen, from: startsOn, until: endsOn, by: call.principal,
                        on: call.connection, logger: call.logger))
            return response
        }
    }

    public func generateBills(request: ServerRequest<Linli_Billing_V1_GenerateBillsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_GenerateBillsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let month = String(try Input.localDate(m.month + "-01", field: "month").prefix(7))
        return try await handler.write(request, context) { [fees] call in
            let run = try await fees.generate(community: community, month: month, by: call.principal, on: call.connection, logger: call.logger)
            call.logger.info(
                "bills generated",
                metadata: [
                    "billing.month": "\(month)", "billing.created": "\(run.created)",
                    "billing.charged_fen": "\(run.chargedFen)",
                ])
            return Linli_Billing_V1_GenerateBillsResponse.with {
                $0.created = Int32(clamping: run.created)
                $0.alreadyBilled = Int32(clamping: run.alreadyBilled)
                $0.chargedFen = run.chargedFen
            }
        }
    }

    public func listBills(request: ServerRequest<Linli_Billing_V1_ListBillsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_ListBillsResponse>
    {
        let m = request.message
        let room: RoomID = try Input.id(m.roomID, field: "room_id")
        return try await handler.read(request) { [fees] call in
            let bills = try await fees.bills(room: room, openOnly: m.openOnly, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Billing_V1_ListBillsResponse()
            response.bills = bills.map(Linli_Billing_V1_Bill.init)
            response.openFen = bills.reduce(0) { $0 + $1.openFen }
            response.lateFeeDueFen = bills.reduce(0) { $0 + $1.lateFeeDueFen }
            return response
        }
    }

    public func pay(request: ServerRequest<Linli_Billing_V1_PayRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_PayResponse>
    {
        let m = request.message
        let room: RoomID = try Input.id(m.roomID, field: "room_id")
        let bills = try Input.ids(m.billIds, field: "bill_ids", as: IDTag.Bill.self).map(\.uuid)
        let coupon: UUID? = m.couponID.isEmpty ? nil : try Input.id(m.couponID, field: "coupon_id", as: IDTag.Commerce.self).uuid
        guard m.methods.count <= 6, coupon != nil || !m.methods.isEmpty else {
            throw LinliError.invalid("methods", "give 1 to 6 payment methods (none only when a coupon pays it all)")
        }
        var tenders: [PaymentStore.Tender] = []
        for (index, line) in m.methods.enumerated() {
            let method = try ProtoEnum.decode(line.method, PaymentStore.Method.self, field: "methods[\(index)].method")
            guard method != .coupon else { throw LinliError.invalid("methods[\(index)].method", "a coupon is given in coupon_id") }
            let type = try Self.prepaidType(line.prepaidType, field: "methods[\(index)].prepaid_type")
            guard method == .prepaid || line.prepaidType == .unspecified else {
                throw LinliError.invalid("methods[\(index)].prepaid_type", "is only for the prepaid method")
            }
            guard method == .prepaid || line.residentID.isEmpty else {
                throw LinliError.invalid("methods[\(index)].resident_id", "is only for the prepaid method")
            }
            let resident: ResidentID? = line.residentID.isEmpty ? nil : try Input.id(line.residentID, field: "methods[\(index)].resident_id")
            guard !tenders.contains(where: { $0.method == method && $0.prepaidType == type && $0.resident == resident }) else {
                throw LinliError.invalid("methods[\(index)].method", "appears twice")
            }
            guard (1...Self.maxFen).contains(line.amountFen) else {
                throw LinliError.invalid("methods[\(index)].amount_fen", "must be from 1 to \(Self.maxFen)")
            }
            tenders.append(PaymentStore.Tender(method, line.amountFen, prepaidType: type, resident: resident))
        }
        let depositKind = tenders.contains(where: { $0.method == .deposit }) ? try Self.depositKind(m.depositKind, field: "deposit_kind") : ""
        let order = m.allocation == .unspecified ? nil : try ProtoEnum.decode(m.allocation, PaymentStore.AllocationOrder.self, field: "allocation")
        return try await handler.write(request, context) { [cashier] call in
            let payment = try await cashier.pay(
                room: room, bills: bills, tenders: tenders, order: order, depositKind: depositKind, coupon: coupon,
                by: call.principal, on: call.connection, logger: call.logger)
            return Linli_Billing_V1_PayResponse.with {
                $0.paymentID = payment.id.uuidString.lowercased()
                $0.receiptNo = payment.receiptNo
                $0.totalFen = payment.totalFen
                $0.settledFen = payment.settledFen
                $0.toPrepaidFen = payment.toPrepaidFen
                $0.allocations = payment.allocations.map { a in
                    .with {
                        $0.billID = a.bill.uuidString.lowercased()
                        $0.method = ProtoEnum.encode(a.method)
                        $0.amountFen = a.amountFen
                    }
                }
                $0.paidAt = Google_Protobuf_Timestamp(date: payment.paidAt)
                $0.lateFeeFen = payment.lateFeeFen
                $0.couponFen = payment.couponFen
            }
        }
    }

    public func topUpPrepaid(request: ServerRequest<Linli_Billing_V1_TopUpPrepaidRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_TopUpPrepaidResponse>
    {
        let move = try PrepaidMovement(request.message)
        return try await handler.write(request, context) { [cashier] call in
            let balance = try await cashier.topUp(
                move.owner, type: move.type, method: move.method, amountFen: move.amountFen, by: call.principal, on: call.connection,
                logger: call.logger)
            return Linli_Billing_V1_TopUpPrepaidResponse.with { $0.balanceFen = balance }
        }
    }

    public func getPrepaidBalance(request: ServerRequest<Linli_Billing_V1_GetPrepaidBalanceRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_GetPrepaidBalanceResponse>
    {
        let owner = try Self.prepaidOwner(room: request.message.roomID, resident: request.message.residentID)
        let type = try Self.prepaidType(request.message.prepaidType, field: "prepaid_type")
        return try await handler.read(request) { [cashier] call in
            let accounts = try await cashier.prepaidAccounts(owner, for: call.principal, on: call.connection, logger: call.logger)
            return .with {
                let asked = accounts.first { $0.type == type }
                $0.balanceFen = asked?.balanceFen ?? 0
                $0.frozen = asked?.frozen ?? false
                $0.accounts = accounts.map(Linli_Billing_V1_PrepaidAccount.init)
            }
        }
    }

    public func checkLedger(request: ServerRequest<Linli_Billing_V1_CheckLedgerRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_CheckLedgerResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [cashier] call in
            let check = try await cashier.check(community: community, for: call.principal, on: call.connection, logger: call.logger)
            return .with {
                $0.balanced = check.balanced
                $0.debitsFen = check.debitsFen
                $0.creditsFen = check.creditsFen
                $0.accountsOff = Int32(clamping: check.accountsOff)
                $0.billsOff = Int32(clamping: check.billsOff)
                $0.receivablesOff = Int32(clamping: check.receivablesOff)
                $0.transfers = Int32(clamping: check.transfers)
                $0.bills = Int32(clamping: check.bills)
            }
        }
    }
    public func setPrepaidFrozen(request: ServerRequest<Linli_Billing_V1_SetPrepaidFrozenRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_SetPrepaidFrozenResponse>
    {
        let m = request.message
        let owner = try Self.prepaidOwner(room: m.roomID, resident: m.residentID)
        return try await handler.write(request, context) { [cashier] call in
            try await cashier.setFrozen(
                owner, type: try Self.prepaidType(m.prepaidType, field: "prepaid_type"), frozen: m.frozen, by: call.principal, on: call.connection,
                logger: call.logger)
            return Linli_Billing_V1_SetPrepaidFrozenResponse()
        }
    }

    public func withdrawPrepaid(request: ServerRequest<Linli_Billing_V1_WithdrawPrepaidRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_WithdrawPrepaidResponse>
    {
        let move = try PrepaidMovement(request.message)
        return try await handler.write(request, context) { [cashier] call in
            let balance = try await cashier.withdraw(
                move.owner, type: move.type, method: move.method, amountFen: move.amountFen, by: call.principal, on: call.connection,
                logger: call.logger)
            return Linli_Billing_V1_WithdrawPrepaidResponse.with { $0.balanceFen = balance }
        }
    }

    public func runPrepaidOffset(request: ServerRequest<Linli_Billing_V1_RunPrepaidOffsetRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_RunPrepaidOffsetResponse>
    {
        let ctx = try handler.context(request.metadata)
        _ = try Input.requestID(request.message.requestID)
        // Not replayed by request id: each run offsets what has fallen due since, and a rerun finds nothing twice.
        // Only the caller's communities: another community's accounts and bills stay untouched.
        let done = try await PrepaidOffsetJob(database: handler.database, logger: ctx.logger)
            .run(try ctx.requireTenant(), communities: ctx.principal.communityIDs)
        return ServerResponse(
            message: .with {
                $0.offsets = Int32(clamping: done.count)
                $0.offsetFen = done.fen
            })
    }

    public func getReceipt(request: ServerRequest<Linli_Billing_V1_GetReceiptRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_GetReceiptResponse>
    {
        let payment = try Input.id(request.message.paymentID, field: "payment_id", as: IDTag.Payment.self).uuid
        return try await handler.read(request) { [cashier] call in
            let receipt = try await cashier.receipt(payment, for: call.principal, on: call.connection, logger: call.logger)
            return .with { $0.receipt = .init(receipt) }
        }
    }

    public func voidReceipt(request: ServerRequest<Linli_Billing_V1_VoidReceiptRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_VoidReceiptResponse>
    {
        let m = request.message
        let payment = try Input.id(m.paymentID, field: "payment_id", as: IDTag.Payment.self).uuid
        let reason = try Input.text(m.reason, field: "reason", min: 2, max: 200)
        return try await handler.write(request, context) { [cashier] call in
            let receipt = try await cashier.void(payment, reason: reason, by: call.principal, on: call.connection, logger: call.logger)
            return Linli_Billing_V1_VoidReceiptResponse.with { $0.receipt = .init(receipt) }
        }
    }

    public func getArrears(request: ServerRequest<Linli_Billing_V1_GetArrearsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_GetArrearsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        return try await handler.read(request) { [cashier] call in
            let rows = try await cashier.arrears(
                community: community, byBuilding: m.byBuilding, for: call.principal, on: call.connection, logger: call.logger)
            return .with {
                $0.rows = rows.map { row in
                    .with {
                        $0.id = row.id.uuidString.lowercased()
                        $0.label = row.key
                        $0.bucketsFen = row.bucketsFen
                        $0.totalFen = row.totalFen
                    }
                }
                $0.totalFen = rows.reduce(0) { $0 + $1.totalFen }
            }
        }
    }

    public func getBillingSummary(request: ServerRequest<Linli_Billing_V1_GetBillingSummaryRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_GetBillingSummaryResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let (first, months) = try BillingReportStore.period(m.period, field: "period")
        return try await handler.read(request) { [reports] call in
            let summary = try await reports.summary(
                community: community, first: first, months: months, for: call.principal, on: call.connection, logger: call.logger)
            return .with {
                $0.from = summary.from
                $0.to = summary.to
                $0.receivableFen = summary.receivableFen
                $0.collectedForPeriodFen = summary.collectedForPeriodFen
                $0.collectionRateBasisPoints = Int32(clamping: summary.collectionRateBasisPoints)
                $0.receivedFen = summary.receivedFen
                $0.prepaidInFen = summary.prepaidInFen
                $0.prepaidBalanceFen = summary.prepaidBalanceFen
                $0.paidOutFen = summary.paidOutFen
                $0.arrearsFen = summary.arrearsFen
                $0.refundedFen = summary.refundedFen
                $0.waivedFen = summary.waivedFen
                $0.lateFeeFen = summary.lateFeeFen
            }
        }
    }

    public func getDailyClose(request: ServerRequest<Linli_Billing_V1_GetDailyCloseRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_GetDailyCloseResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let day = try Input.localDate(m.day, field: "day")
        return try await handler.read(request) { [reports] call in
            let rows = try await reports.dailyClose(community: community, day: day, for: call.principal, on: call.connection, logger: call.logger)
            return .with {
                $0.rows = rows.map { row in
                    .with {
                        $0.cashierID = row.cashier.description
                        $0.cashierName = row.cashierName
                        $0.method = row.method
                        $0.takenFen = row.takenFen
                        $0.paidOutFen = row.paidOutFen
                        $0.voidedFen = row.voidedFen
                        $0.receipts = Int32(clamping: row.receipts)
                    }
                }
                $0.netFen = rows.reduce(0) { $0 + $1.takenFen - $1.paidOutFen - $1.voidedFen }
            }
        }
    }

    public func recordMeterReading(request: ServerRequest<Linli_Billing_V1_RecordMeterReadingRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_RecordMeterReadingResponse>
    {
        let m = request.message
        guard (0...10_000_000_000_000).contains(m.valueCenti) else { throw LinliError.invalid("value_centi", "must be from 0 to 10^13") }
        guard m.replacement || m.oldFinalCenti == 0 else { throw LinliError.invalid("old_final_centi", "is only for a meter replacement") }
        guard m.oldFinalCenti >= 0 else { throw LinliError.invalid("old_final_centi", "must not be negative") }
        let new = MeterStore.NewReading(
            room: try Input.id(m.roomID, field: "room_id"), kind: try ProtoEnum.decode(m.kind, MeterStore.Kind.self, field: "kind"),
            readOn: try Input.localDate(m.readOn, field: "read_on"), valueCenti: m.valueCenti, replacement: m.replacement,
            oldFinalCenti: m.oldFinalCenti)
        return try await handler.write(request, context) { [meters] call in
            let reading = try await meters.record(new, by: call.principal, on: call.connection, logger: call.logger)
            return Linli_Billing_V1_RecordMeterReadingResponse.with {
                $0.reading = .with {
                    $0.id = reading.id.uuidString.lowercased()
                    $0.roomID = reading.room.description
                    $0.kind = ProtoEnum.encode(reading.kind)
                    $0.readOn = reading.readOn
                    $0.valueCenti = reading.valueCenti
                    $0.previousCenti = reading.previousCenti ?? 0
                    $0.usageCenti = reading.usageCenti
                    $0.replacement = reading.replacement
                }
            }
        }
    }

    public func importMeterReadings(request: StreamingServerRequest<Linli_Billing_V1_ImportMeterReadingsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_ImportMeterReadingsResponse>
    {
        let whole = try await LineStream.collect(request.messages)
        let community: CommunityID = try Input.id(whole.communityID, field: "community_id")
        return try await handler.write(whole, metadata: request.metadata, method: context.descriptor.method) { [meters] call in
            let sheet = try await meters.importReadings(
                community: community, lines: whole.lines, by: call.principal, on: call.connection,
                logger: call.logger)
            return Linli_Billing_V1_ImportMeterReadingsResponse.with {
                $0.committed = sheet.errorCount == 0
                $0.rows = Int32(clamping: sheet.rows)
                $0.errorCount = Int32(clamping: sheet.errorCount)
                $0.errors = sheet.errors.map { e in
                    .with {
                        $0.line = Int32(clamping: e.line); $0.column = e.column; $0.message = e.message
                    }
                }
            }
        }
    }

    public func collectDeposit(request: ServerRequest<Linli_Billing_V1_CollectDepositRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_DepositResponse>
    {
        let m = request.message
        let method = try Self.channel(m.method, field: "method")
        return try await moveDeposit(request.metadata, "CollectDeposit", m, .collect(method), room: m.roomID, kind: m.kind, amount: m.amountFen)
    }

    public func convertDepositToPrepaid(request: ServerRequest<Linli_Billing_V1_ConvertDepositToPrepaidRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_DepositResponse>
    {
        let m = request.message
        return try await moveDeposit(request.metadata, "ConvertDepositToPrepaid", m, .convert, room: m.roomID, kind: m.kind, amount: m.amountFen)
    }

    public func refundDeposit(request: ServerRequest<Linli_Billing_V1_RefundDepositRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_DepositResponse>
    {
        let m = request.message
        let method = try Self.channel(m.method, field: "method")
        return try await moveDeposit(request.metadata, "RefundDeposit", m, .refund(method), room: m.roomID, kind: m.kind, amount: m.amountFen)
    }

    public func listDeposits(request: ServerRequest<Linli_Billing_V1_ListDepositsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_ListDepositsResponse>
    {
        let room: RoomID = try Input.id(request.message.roomID, field: "room_id")
        return try await handler.read(request) { [cashier] call in
            let deposits = try await cashier.deposits(room: room, for: call.principal, on: call.connection, logger: call.logger)
            return .with {
                $0.deposits = deposits.map { deposit in
                    .with {
                        $0.kind = deposit.kind; $0.balanceFen = deposit.balanceFen
                    }
                }
            }
        }
    }

    private func moveDeposit<Request: IdempotentRequest & Sendable>(
        _ metadata: Metadata, _ method: String, _ m: Request, _ move: PaymentStore.DepositMove, room rawRoom: String, kind rawKind: String,
        amount: Int64
    ) async throws -> ServerResponse<Linli_Billing_V1_DepositResponse> {
        let room: RoomID = try Input.id(rawRoom, field: "room_id")
        let kind = try Self.depositKind(rawKind, field: "kind")
        guard (1...Self.maxFen).contains(amount) else { throw LinliError.invalid("amount_fen", "must be from 1 to \(Self.maxFen)") }
        return try await handler.write(m, metadata: metadata, method: method) { [cashier] call in
            let balance = try await cashier.deposit(
                move, room: room, kind: kind, amountFen: amount, by: call.principal, on: call.connection,
                logger: call.logger)
            return Linli_Billing_V1_DepositResponse.with { $0.balanceFen = balance }
        }
    }

    /// A deposit's kind: 1 to 20 lowercase letters, digits or underscores.
    static func depositKind(_ raw: String, field: String) throws(LinliError) -> String {
        guard (1...20).contains(raw.count), raw.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
            throw .invalid(field, "must be 1 to 20 lowercase letters, digits or _ (e.g. renovation)")
        }
        return raw
    }

    /// A room's or a resident's prepaid account: exactly one of the two ids.
    static func prepaidOwner(room: String, resident: String) throws(LinliError) -> PaymentStore.PrepaidOwner {
        switch (room.isEmpty, resident.isEmpty) {
        case (false, true): return .room(try Input.id(room, field: "room_id"))
        case (true, false): return .resident(try Input.id(resident, field: "resident_id"))
        case (false, false): throw .invalid("resident_id", "give room_id or resident_id, not both")
        case (true, true): throw .invalid("room_id", "is required (or resident_id for a resident's own account)")
        }
    }

    /// A prepaid account's type; unspecified is general.
    static func prepaidType(_ raw: Linli_Billing_V1_PrepaidType, field: String) throws(LinliError) -> PaymentStore.PrepaidType {
        raw == .unspecified ? .general : try ProtoEnum.decode(raw, PaymentStore.PrepaidType.self, field: field)
    }

    /// Metered price tiers: at least two, limits rising, the last without a limit.
    static func tiers(_ raw: [Linli_Billing_V1_PriceTier], rule: FeeStore.Rule) throws(LinliError) -> [FeeStore.Tier] {
        guard !raw.isEmpty else { return [] }
        guard rule == .metered else { throw .invalid("tiers", "are only for metered items") }
        guard (2...10).contains(raw.count) else { throw .invalid("tiers", "give 2 to 10 tiers") }
        var previous: Int64 = 0
        var result: [FeeStore.Tier] = []
        for (index, tier) in raw.enumerated() {
            guard (0...Self.maxFen).contains(tier.unitPriceFen) else {
                throw .invalid("tiers[\(index)].unit_price_fen", "must be from 0 to \(Self.maxFen)")
            }
            if index == raw.count - 1 {
                guard tier.upToCenti == 0 else { throw .invalid("tiers[\(index)].up_to_centi", "must be 0: the last tier has no limit") }
                result.append(.init(upToCenti: nil, unitPriceFen: tier.unitPriceFen))
            } else {
                guard tier.upToCenti > previous, tier.upToCenti <= 10_000_000_000 else {
                    throw .invalid("tiers[\(index)].up_to_centi", "must rise above the tier before (and at most 10^10)")
                }
                previous = tier.upToCenti
                result.append(.init(upToCenti: tier.upToCenti, unitPriceFen: tier.unitPriceFen))
            }
        }
        return result
    }

    /// Cash or a payment channel: not a stored balance.
    public static func channel(_ raw: Linli_Billing_V1_PaymentMethod, field: String) throws(LinliError) -> PaymentStore.Method {
        let method = try ProtoEnum.decode(raw, PaymentStore.Method.self, field: field)
        guard ![.prepaid, .deposit, .coupon].contains(method) else { throw .invalid(field, "must be cash or a payment channel") }
        return method
    }
}

extension Linli_Billing_V1_CollectDepositRequest: IdempotentRequest {}
extension Linli_Billing_V1_RecordMeterReadingRequest: IdempotentRequest {}
extension Linli_Billing_V1_ImportMeterReadingsRequest: IdempotentRequest, LineStreamMessage {
    public var namesTheImport: Bool { !requestID.isEmpty || !communityID.isEmpty }
}
extension Linli_Billing_V1_ConvertDepositToPrepaidRequest: IdempotentRequest {}
extension Linli_Billing_V1_RefundDepositRequest: IdempotentRequest {}
extension Linli_Billing_V1_SetPrepaidFrozenRequest: IdempotentRequest {}
extension Linli_Billing_V1_WithdrawPrepaidRequest: IdempotentRequest {}
extension Linli_Billing_V1_VoidReceiptRequest: IdempotentRequest {}

extension Linli_Billing_V1_Receipt {
    init(_ r: PaymentStore.Receipt) {
        self.init()
        paymentID = r.payment.uuidString.lowercased()
        receiptNo = r.receiptNo
        roomID = r.room.description
        roomLabel = r.roomLabel
        cashierID = r.cashier.description
        totalFen = r.totalFen
        settledFen = r.settledFen
        toPrepaidFen = r.toPrepaidFen
        paidAt = Google_Protobuf_Timestamp(date: r.paidAt)
        void = r.voidedAt != nil
        voidReason = r.voidReason
        if let at = r.voidedAt { voidedAt = Google_Protobuf_Timestamp(date: at) }
        lines = r.lines.map { line in
            .with {
                $0.billID = line.bill?.uuidString.lowercased() ?? ""
                $0.feeItemName = line.itemName
                $0.period = line.period
                $0.method = line.method
                $0.amountFen = line.amountFen
                $0.kind = line.kind
            }
        }
        lateFeeFen = r.lateFeeFen
        refundedFen = r.refundedFen
    }
}

extension Linli_Billing_V1_CreateFeeItemRequest: IdempotentRequest {}
extension Linli_Billing_V1_BindFeeItemRequest: IdempotentRequest {}
extension Linli_Billing_V1_GenerateBillsRequest: IdempotentRequest {}
extension Linli_Billing_V1_PayRequest: IdempotentRequest {}
extension Linli_Billing_V1_TopUpPrepaidRequest: IdempotentRequest {}

extension Linli_Billing_V1_Bill {
    init(_ b: FeeStore.Bill) {
        self.init()
        id = b.id.uuidString.lowercased()
        roomID = b.room.description
        feeItemID = b.item.uuidString.lowercased()
        feeItemName = b.itemName
        periodStart = b.periodStart
        periodEnd = b.periodEnd
        billedDays = Int32(clamping: b.billedDays)
        periodDays = Int32(clamping: b.periodDays)
        amountFen = b.amountFen
        settledFen = b.settledFen
        openFen = b.openFen
        dueOn = b.dueOn
        parkingSpaceID = b.parkingSpace?.uuidString.lowercased() ?? ""
        lateFeeChargedFen = b.lateFeeChargedFen
        waivedFen = b.waivedFen
        lateFeeDueFen = b.lateFeeDueFen
        totalDueFen = b.totalDueFen
    }
}

extension Linli_Billing_V1_FeeItem {
    init(_ item: FeeStore.Item) {
        self.init()
        id = item.id.uuidString.lowercased()
        communityID = item.community.description
        name = item.name
        kind = ProtoEnum.encode(item.kind)
        rule = ProtoEnum.encode(item.rule)
        unitPriceFen = item.unitPriceFen
        surchargeFen = item.surchargeFen
        dueDay = Int32(clamping: item.dueDay)
        if let kind = item.meterKind { meterKind = ProtoEnum.encode(kind) }
        category = ProtoEnum.encode(item.category)
        cycleDay = Int32(clamping: item.cycleDay)
        lateFeePer10KDaily = Int32(clamping: item.lateFeePer10kDaily)
        graceDays = Int32(clamping: item.graceDays)
        priority = Int32(clamping: item.priority)
        yearlyIncreaseBp = Int32(clamping: item.yearlyIncreaseBP)
        tiers = item.tiers.map { tier in
            .with {
                $0.upToCenti = tier.upToCenti ?? 0; $0.unitPriceFen = tier.unitPriceFen
            }
        }
    }
}

/// The two requests that move money into or out of a prepaid account.
protocol PrepaidMovementRequest {
    var roomID: String { get }
    var residentID: String { get }
    var method: Linli_Billing_V1_PaymentMethod { get }
    var prepaidType: Linli_Billing_V1_PrepaidType { get }
    var amountFen: Int64 { get }
}

extension Linli_Billing_V1_TopUpPrepaidRequest: PrepaidMovementRequest {}
extension Linli_Billing_V1_WithdrawPrepaidRequest: PrepaidMovementRequest {}

/// A top-up or a withdrawal, checked: whose account, which type, through which channel, how much.
struct PrepaidMovement: Sendable {
    var owner: PaymentStore.PrepaidOwner
    var type: PaymentStore.PrepaidType
    var method: PaymentStore.Method
    var amountFen: Int64

    init(_ m: some PrepaidMovementRequest) throws(LinliError) {
        owner = try BillingService.prepaidOwner(room: m.roomID, resident: m.residentID)
        method = try BillingService.channel(m.method, field: "method")
        type = try BillingService.prepaidType(m.prepaidType, field: "prepaid_type")
        guard (1...BillingService.maxFen).contains(m.amountFen) else {
            throw LinliError.invalid("amount_fen", "must be from 1 to \(BillingService.maxFen)")
        }
        amountFen = m.amountFen
    }
}
