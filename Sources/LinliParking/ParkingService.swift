import Foundation
import GRPCCore
import LinliAPI
import LinliBilling
import LinliCore
import LinliTenancy
import Logging
import SwiftProtobuf

/// The `linli.parking.v1.ParkingService` RPCs (parking.proto): shapes checked here, the rest in
/// `ParkingStore` inside the caller's tenant transaction.
public struct ParkingService: Sendable {
    let store: ParkingStore
    let handler: Handler

    /// `coupons`: the commerce module's parking coupons (`PaySessionRequest.coupon_id`).
    public init(database: Database, logger: Logger, coupons: (any FeeCoupons)? = nil) {
        handler = Handler(database: database, logger: logger)
        store = ParkingStore(coupons: coupons)
    }

    static func code(_ raw: String) throws(LinliError) -> String { try Input.code(raw) }

    static func within(_ value: Int32, _ range: ClosedRange<Int>, default def: Int, field: String) throws(LinliError) -> Int {
        if value == 0 { return def }
        guard range.contains(Int(clamping: value)) else { throw LinliError.invalid(field, "must be \(range.lowerBound) to \(range.upperBound)") }
        return Int(clamping: value)
    }

    static func tariff(_ t: Linli_Parking_V1_Tariff) -> ParkingFeeRule.Tariff {
        ParkingFeeRule.Tariff(
            firstBlockMinutes: Int(clamping: t.firstBlockMinutes), firstBlockFen: t.firstBlockFen, stepMinutes: Int(clamping: t.stepMinutes),
            stepFen: t.stepFen,
            capFen: t.capFen)
    }

    static func rule(_ r: Linli_Parking_V1_FeeRule) throws(LinliError) -> ParkingFeeRule {
        let kind = try ProtoEnum.decode(r.kind, ParkingFeeRule.Kind.self, field: "rule.kind")
        guard r.hasTariff || kind == .perEntry else { throw LinliError.invalid("rule.tariff", "is required") }
        let rule = ParkingFeeRule(
            kind: kind, freeMinutes: Int(clamping: r.freeMinutes), freeMode: r.freeMode == .deduction ? .deduction : .threshold,
            tariff: tariff(r.tariff), capMode: r.capMode == .calendarDay ? .calendarDay : .rolling24h,
            night: r.hasNight ? tariff(r.night) : nil,
            dayStartMinute: r.dayStartMinute == 0 && r.nightStartMinute == 0 ? 480 : Int(clamping: r.dayStartMinute),
            nightStartMinute: r.dayStartMinute == 0 && r.nightStartMinute == 0 ? 1_140 : Int(clamping: r.nightStartMinute), perEntryFen: r.perEntryFen
        )
        if let (field, message) = rule.problem { throw LinliError.invalid("rule.\(field)", message) }
        return rule
    }

    /// The input guard has already held every timestamp to [2000, 2100) (InputLimits).
    static func time(_ t: Google_Protobuf_Timestamp, field: String) throws(LinliError) -> Date {
        try Input.instant(t, field: field)
    }

    /// The largest amount a request may carry (Self.maxAmountFen): 1,000,000.00 元.
    static let maxAmountFen: Int64 = 100_000_000

    static func plate(_ raw: String, field: String = "plate") throws(LinliError) -> String { try Input.plate(raw, field: field) }
}

extension ParkingService: Linli_Parking_V1_ParkingService.ServiceProtocol {
    public func createLot(request: ServerRequest<Linli_Parking_V1_CreateLotRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Lot>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let parent: UUID? = m.parentLotID.isEmpty ? nil : try Input.id(m.parentLotID, field: "parent_lot_id", as: IDTag.Parking.self).uuid
        let new = ParkingStore.NewLot(
            community: community, code: try Self.code(m.code), name: try Input.text(m.name, field: "name", max: 100),
            kind: m.kind == .underground ? "underground" : "above_ground", parent: parent,
            capacity: try Self.within(m.capacity, 1...100_000, default: 0, field: "capacity"),
            payWindowMinutes: try Self.within(m.payWindowMinutes, 1...120, default: 15, field: "pay_window_minutes"),
            visitorFreeMinutes: try Self.within(m.visitorFreeMinutes, 1...1_440, default: 120, field: "visitor_free_minutes"),
            visitorDailyLimit: try Self.within(m.visitorDailyLimit, 1...100, default: 3, field: "visitor_daily_limit"),
            duplicateReadSeconds: try Self.within(m.duplicateReadSeconds, 1...300, default: 10, field: "duplicate_read_seconds"))
        guard m.kind != .unspecified else { throw LinliError.invalid("kind", "must be ABOVE_GROUND or UNDERGROUND") }
        return try await handler.write(request, context) { [store] call in
            .init(try await store.createLot(new, for: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func updateLot(request: ServerRequest<Linli_Parking_V1_UpdateLotRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Lot>
    {
        let m = request.message
        let id = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let name = m.name.isEmpty ? nil : try Input.text(m.name, field: "name", max: 100)
        let capacity = m.capacity == 0 ? nil : try Self.within(m.capacity, 1...100_000, default: 0, field: "capacity")
        let window = m.payWindowMinutes == 0 ? nil : try Self.within(m.payWindowMinutes, 1...120, default: 15, field: "pay_window_minutes")
        let free = m.visitorFreeMinutes == 0 ? nil : try Self.within(m.visitorFreeMinutes, 1...1_440, default: 0, field: "visitor_free_minutes")
        let limit = m.visitorDailyLimit == 0 ? nil : try Self.within(m.visitorDailyLimit, 1...100, default: 0, field: "visitor_daily_limit")
        let duplicate =
            m.duplicateReadSeconds == 0 ? nil : try Self.within(m.duplicateReadSeconds, 1...300, default: 0, field: "duplicate_read_seconds")
        return try await handler.write(request, context) { [store] call in
            var lot = try await store.lot(id, for: call.principal, on: call.connection, logger: call.logger)
            lot.name = name ?? lot.name
            lot.capacity = capacity ?? lot.capacity
            lot.payWindowMinutes = window ?? lot.payWindowMinutes
            lot.visitorFreeMinutes = free ?? lot.visitorFreeMinutes
            lot.visitorDailyLimit = limit ?? lot.visitorDailyLimit
            lot.duplicateReadSeconds = duplicate ?? lot.duplicateReadSeconds
            try await store.updateLot(lot, on: call.connection, logger: call.logger)
            return .init(try await store.lot(id, for: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func listLots(request: ServerRequest<Linli_Parking_V1_ListLotsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ListLotsResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let lots = try await store.lots(community: community, on: call.connection, logger: call.logger)
            return .with { $0.lots = lots.map(Linli_Parking_V1_Lot.init) }
        }
    }

    public func addLane(request: ServerRequest<Linli_Parking_V1_AddLaneRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Lane>
    {
        let m = request.message
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let device: DeviceID = try Input.id(m.deviceID, field: "device_id")
        let code = try Self.code(m.code)
        let name = try Input.text(m.name, field: "name", max: 100)
        guard m.direction != .unspecified else { throw LinliError.invalid("direction", "must be ENTRY or EXIT") }
        return try await handler.write(request, context) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            let lane = ParkingStore.Lane(
                id: UUIDv7.make(), lot: lot.id, device: device.uuid, code: code, name: name, direction: m.direction == .exit ? "exit" : "entry",
                tempCarsEnter: !m.tempCarsRefused, charges: !m.free, reentry: m.reentry, exitWithoutEntry: m.exitWithoutEntry)
            return .init(try await store.addLane(lane, lot: lot, on: call.connection, logger: call.logger))
        }
    }

    public func listLanes(request: ServerRequest<Linli_Parking_V1_ListLanesRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ListLanesResponse>
    {
        let lotID = try Input.id(request.message.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        return try await handler.read(request) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            let lanes = try await store.lanes(lot: lot.id, on: call.connection, logger: call.logger)
            return .with { $0.lanes = lanes.map(Linli_Parking_V1_Lane.init) }
        }
    }

    public func configureSpace(request: ServerRequest<Linli_Parking_V1_ConfigureSpaceRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ConfigureSpaceResponse>
    {
        let m = request.message
        let space = try Input.id(m.spaceID, field: "space_id", as: IDTag.Parking.self).uuid
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        return try await handler.write(request, context) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            try await store.configureSpace(space, lot: lot, oneCarInside: m.oneCarInside, on: call.connection, logger: call.logger)
            return .with {
                $0.spaceID = space.uuidString.lowercased()
                $0.lotID = lot.id.uuidString.lowercased()
                $0.oneCarInside = m.oneCarInside
            }
        }
    }

    public func setFeeRule(request: ServerRequest<Linli_Parking_V1_SetFeeRuleRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_FeeRuleVersion>
    {
        let m = request.message
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let name = try Input.text(m.name, field: "name", max: 100)
        guard m.hasRule else { throw LinliError.invalid("rule", "is required") }
        let rule = try Self.rule(m.rule)
        return try await handler.write(request, context) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            return .init(try await store.setRule(rule, name: name, lot: lot, by: call.principal.subjectID, on: call.connection, logger: call.logger))
        }
    }

    public func listFeeRules(request: ServerRequest<Linli_Parking_V1_ListFeeRulesRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ListFeeRulesResponse>
    {
        let lotID = try Input.id(request.message.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        return try await handler.read(request) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            let rules = try await store.rules(lot: lot.id, on: call.connection, logger: call.logger)
            return .with { $0.versions = rules.map(Linli_Parking_V1_FeeRuleVersion.init) }
        }
    }

    public func quoteFee(request: ServerRequest<Linli_Parking_V1_QuoteFeeRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_QuoteFeeResponse>
    {
        let m = request.message
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let entered = try Self.time(m.enteredAt, field: "entered_at")
        let exited = try Self.time(m.exitedAt, field: "exited_at")
        guard exited >= entered else { throw LinliError.invalid("exited_at", "must not be before entered_at") }
        guard exited.timeIntervalSince(entered) <= 366 * 86_400 else { throw LinliError.invalid("exited_at", "at most a year after entered_at") }
        guard m.version >= 0 else { throw LinliError.invalid("version", "must be 0 (the current one) or a version") }
        return try await handler.read(request) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            guard
                let (version, rule) = try await store.rule(
                    lot: lot.id, version: m.version == 0 ? nil : Int(clamping: m.version), on: call.connection, logger: call.logger)
            else { throw LinliError.notFound("fee rule version") }
            return .with {
                $0.version = Int32(clamping: version)
                $0.minutes = Int32(clamping: ParkingFee.minutes(from: entered, to: exited))
                $0.feeFen = ParkingFee.fee(rule, entry: entered, exit: exited)
            }
        }
    }

    public func issuePermit(request: ServerRequest<Linli_Parking_V1_IssuePermitRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Permit>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let lotID: UUID? = m.lotID.isEmpty ? nil : try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let plate = try Self.plate(m.plate)
        let kind = try ProtoEnum.decode(m.kind, GateDecision.Permit.Kind.self, field: "kind")
        let space: UUID? = m.spaceID.isEmpty ? nil : try Input.id(m.spaceID, field: "space_id", as: IDTag.Parking.self).uuid
        let resident: UUID? = m.residentID.isEmpty ? nil : try Input.id(m.residentID, field: "resident_id", as: IDTag.Parking.self).uuid
        let from = m.hasValidFrom ? try Self.time(m.validFrom, field: "valid_from") : Date()
        let until = m.hasValidUntil ? try Self.time(m.validUntil, field: "valid_until") : nil
        if let until, until <= from { throw LinliError.invalid("valid_until", "must be after valid_from") }
        if kind == .monthly, until == nil { throw LinliError.invalid("valid_until", "a monthly permit needs an end") }
        guard (0...10_000_000).contains(m.monthlyFeeFen) else { throw LinliError.invalid("monthly_fee_fen", "must be 0 to 10000000") }
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            if let lotID {
                let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
                guard lot.community == community else { throw LinliError.notFound("lot") }
            }
            let permit = ParkingStore.Permit(
                id: UUIDv7.make(), community: community, lot: lotID, plate: plate, kind: kind, space: space, resident: resident,
                validFrom: from, validUntil: until, monthlyFeeFen: m.monthlyFeeFen, revoked: false)
            return .init(try await store.issuePermit(permit, by: call.principal.subjectID, on: call.connection, logger: call.logger))
        }
    }

    public func renewPermit(request: ServerRequest<Linli_Parking_V1_RenewPermitRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_RenewPermitResponse>
    {
        let m = request.message
        let id = try Input.id(m.permitID, field: "permit_id", as: IDTag.Parking.self).uuid
        guard (1...24).contains(m.months) else { throw LinliError.invalid("months", "must be 1 to 24") }
        let method = try BillingService.channel(m.method, field: "method")
        return try await handler.write(request, context) { [store] call in
            let permit = try await store.permit(id, for: call.principal, lock: true, on: call.connection, logger: call.logger)
            let (renewed, payment) = try await store.renew(
                permit, months: Int(clamping: m.months), method: method, by: call.principal.subjectID, on: call.connection, logger: call.logger)
            return .with {
                $0.permit = .init(renewed)
                $0.payment = .init(payment)
            }
        }
    }

    public func revokePermit(request: ServerRequest<Linli_Parking_V1_RevokePermitRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Permit>
    {
        let id = try Input.id(request.message.permitID, field: "permit_id", as: IDTag.Parking.self).uuid
        return try await handler.write(request, context) { [store] call in
            let permit = try await store.permit(id, for: call.principal, lock: true, on: call.connection, logger: call.logger)
            return .init(try await store.revoke(permit, on: call.connection, logger: call.logger))
        }
    }

    public func listPermits(request: ServerRequest<Linli_Parking_V1_ListPermitsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ListPermitsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let plate = m.plate.isEmpty ? nil : try Self.plate(m.plate)
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let rows = try await store.permits(
                community: community, plate: plate, after: after, limit: limit + 1, on: call.connection, logger: call.logger)
            let page = PageToken.page(rows, limit: limit) { ($0.validFrom, $0.id) }
            return .with {
                $0.permits = page.rows.map(Linli_Parking_V1_Permit.init)
                $0.nextPageToken = page.next
            }
        }
    }

    public func addListEntry(request: ServerRequest<Linli_Parking_V1_AddListEntryRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ListEntry>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let lotID: UUID? = m.lotID.isEmpty ? nil : try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let plate = try Self.plate(m.plate)
        guard m.list != .unspecified else { throw LinliError.invalid("list", "must be BLACK or WHITE") }
        let from = m.hasValidFrom ? try Self.time(m.validFrom, field: "valid_from") : Date()
        let until = m.hasValidUntil ? try Self.time(m.validUntil, field: "valid_until") : nil
        if let until, until <= from { throw LinliError.invalid("valid_until", "must be after valid_from") }
        let reason = m.reason.isEmpty ? "" : try Input.text(m.reason, field: "reason", max: 200)
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            if let lotID {
                let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
                guard lot.community == community else { throw LinliError.notFound("lot") }
            }
            let entry = ParkingStore.ListEntry(
                id: UUIDv7.make(), community: community, lot: lotID, plate: plate, list: m.list == .black ? "black" : "white",
                validFrom: from, validUntil: until, reason: reason, removed: false)
            return .init(try await store.addEntry(entry, by: call.principal.subjectID, on: call.connection, logger: call.logger))
        }
    }

    public func removeListEntry(request: ServerRequest<Linli_Parking_V1_RemoveListEntryRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ListEntry>
    {
        let id = try Input.id(request.message.entryID, field: "entry_id", as: IDTag.Parking.self).uuid
        return try await handler.write(request, context) { [store] call in
            .init(try await store.removeEntry(id, for: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func listListEntries(request: ServerRequest<Linli_Parking_V1_ListListEntriesRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ListListEntriesResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let entries = try await store.entries(community: community, on: call.connection, logger: call.logger)
            return .with { $0.entries = entries.map(Linli_Parking_V1_ListEntry.init) }
        }
    }

    public func registerVisitorCar(request: ServerRequest<Linli_Parking_V1_RegisterVisitorCarRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_VisitorCar>
    {
        let m = request.message
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let plate = try Self.plate(m.plate)
        let named: UUID? = m.residentID.isEmpty ? nil : try Input.id(m.residentID, field: "resident_id", as: IDTag.Parking.self).uuid
        let from = m.hasValidFrom ? try Self.time(m.validFrom, field: "valid_from") : Date()
        guard m.hasValidUntil else { throw LinliError.invalid("valid_until", "is required") }
        let until = try Self.time(m.validUntil, field: "valid_until")
        guard until > from else { throw LinliError.invalid("valid_until", "must be after valid_from") }
        guard until.timeIntervalSince(from) <= 7 * 86_400 else { throw LinliError.invalid("valid_until", "at most 7 days after valid_from") }
        return try await handler.write(request, context) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            let resident = try await Self.hostResident(named, community: lot.community, call)
            let id = try await store.registerVisitor(
                lot: lot, plate: plate, resident: resident, from: from, until: until, by: call.principal.subjectID, on: call.connection,
                logger: call.logger)
            return .with {
                $0.id = id.uuidString.lowercased()
                $0.lotID = lot.id.uuidString.lowercased()
                $0.plate = plate
                $0.residentID = resident.uuidString.lowercased()
                $0.validFrom = Google_Protobuf_Timestamp(date: from)
                $0.validUntil = Google_Protobuf_Timestamp(date: until)
                $0.freeMinutes = Int32(clamping: lot.visitorFreeMinutes)
            }
        }
    }

    public func reserveSpace(request: ServerRequest<Linli_Parking_V1_ReserveSpaceRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Reservation>
    {
        let m = request.message
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let plate = try Self.plate(m.plate)
        let kind = try ProtoEnum.decode(m.kind, ParkingStore.Reservation.Kind.self, field: "kind")
        let space: UUID? = m.spaceID.isEmpty ? nil : try Input.id(m.spaceID, field: "space_id", as: IDTag.Parking.self).uuid
        let named: UUID? = m.residentID.isEmpty ? nil : try Input.id(m.residentID, field: "resident_id", as: IDTag.Parking.self).uuid
        guard m.hasStartsAt else { throw LinliError.invalid("starts_at", "is required") }
        guard m.hasEndsAt else { throw LinliError.invalid("ends_at", "is required") }
        let starts = try Self.time(m.startsAt, field: "starts_at")
        let ends = try Self.time(m.endsAt, field: "ends_at")
        let now = Date()
        guard starts >= now.addingTimeInterval(-5 * 60) else { throw LinliError.invalid("starts_at", "must not be in the past") }
        guard starts <= now.addingTimeInterval(30 * 86_400) else { throw LinliError.invalid("starts_at", "at most 30 days ahead") }
        guard ends > starts else { throw LinliError.invalid("ends_at", "must be after starts_at") }
        guard ends.timeIntervalSince(starts) <= 7 * 86_400 else { throw LinliError.invalid("ends_at", "at most 7 days after starts_at") }
        return try await handler.write(request, context) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            let resident = try await Self.hostResident(named, community: lot.community, call)
            let made = try await store.reserve(
                .init(plate: plate, kind: kind, space: space, resident: resident, startsAt: starts, endsAt: ends), lot: lot,
                by: call.principal.subjectID, on: call.connection, logger: call.logger)
            return .init(made, freeMinutes: lot.visitorFreeMinutes)
        }
    }

    public func cancelReservation(request: ServerRequest<Linli_Parking_V1_CancelReservationRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Reservation>
    {
        let id = try Input.id(request.message.reservationID, field: "reservation_id", as: IDTag.Parking.self).uuid
        return try await handler.write(request, context) { [store] call in
            let found = try await store.reservation(id, for: call.principal, lock: true, on: call.connection, logger: call.logger)
            if call.principal.role == .resident {
                let own = try await Self.ownResident(call.principal.subjectID, community: found.community, call)
                guard own == found.resident else { throw LinliError.notFound("reservation") }
            }
            let lot = try await store.lot(found.lot, for: call.principal, on: call.connection, logger: call.logger)
            let cancelled = try await store.cancelReservation(found, on: call.connection, logger: call.logger)
            return .init(cancelled, freeMinutes: lot.visitorFreeMinutes)
        }
    }

    public func listReservations(request: ServerRequest<Linli_Parking_V1_ListReservationsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ListReservationsResponse>
    {
        let m = request.message
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            let resident: UUID? =
                call.principal.role == .resident ? try await Self.ownResident(call.principal.subjectID, community: lot.community, call) : nil
            let rows = try await store.reservations(
                lot: lot.id, resident: resident, activeOnly: m.activeOnly, before: after?.1, limit: limit + 1, on: call.connection,
                logger: call.logger)
            let page = PageToken.page(rows, limit: limit) { ($0.createdAt, $0.id) }
            return .with {
                $0.reservations = page.rows.map { .init($0, freeMinutes: lot.visitorFreeMinutes) }
                $0.nextPageToken = page.next
            }
        }
    }

    /// The resident a visitor's car or a reservation is for: a resident themselves (naming
    /// another is refused), staff the one they name.
    static func hostResident(_ named: UUID?, community: CommunityID, _ call: Call) async throws -> UUID {
        if call.principal.role == .resident {
            let own = try await ownResident(call.principal.subjectID, community: community, call)
            if let named, named != own { throw LinliError(.permissionDenied, "resident_id: residents act for themselves") }
            return own
        }
        guard let named else { throw LinliError.invalid("resident_id", "staff name the resident") }
        return named
    }

    static func ownResident(_ user: UserID, community: CommunityID, _ call: Call) async throws -> UUID {
        try await OwnResident.of(user, community: community, on: call.connection, logger: call.logger)
    }

    public func listSessions(request: ServerRequest<Linli_Parking_V1_ListSessionsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ListSessionsResponse>
    {
        let m = request.message
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let plate = m.plate.isEmpty ? nil : try Self.plate(m.plate)
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            let rows = try await store.sessions(
                lot: lot.id, openOnly: m.openOnly, plate: plate, before: after?.1, limit: limit + 1, on: call.connection, logger: call.logger)
            let page = PageToken.page(rows, limit: limit) { ($0.enteredAt ?? $0.exitedAt ?? Date(), $0.id) }
            return .with {
                $0.sessions = page.rows.map(Linli_Parking_V1_Session.init)
                $0.nextPageToken = page.next
            }
        }
    }

    public func quoteSession(request: ServerRequest<Linli_Parking_V1_QuoteSessionRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_SessionQuote>
    {
        let m = request.message
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let plate = try Self.plate(m.plate)
        return try await handler.read(request) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            guard let session = try await store.openSession(lot: lot.id, plate: plate, on: call.connection, logger: call.logger) else {
                throw LinliError.notFound("open session of this plate")
            }
            let quote = try await store.quote(session, lot: lot, at: Date(), on: call.connection, logger: call.logger)
            return .init(session, quote)
        }
    }

    public func paySession(request: ServerRequest<Linli_Parking_V1_PaySessionRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_PaySessionResponse>
    {
        let m = request.message
        let id = try Input.id(m.sessionID, field: "session_id", as: IDTag.Parking.self).uuid
        let coupon: UUID? = m.couponID.isEmpty ? nil : try Input.id(m.couponID, field: "coupon_id", as: IDTag.Commerce.self).uuid
        guard ((coupon == nil ? 1 : 0)...Self.maxAmountFen).contains(m.amountFen) else {
            throw LinliError.invalid("amount_fen", "must be \(coupon == nil ? 1 : 0) to \(Self.maxAmountFen)")
        }
        let method = try BillingService.channel(m.method, field: "method")
        return try await handler.write(request, context) { [store] call in
            let session = try await store.session(id, for: call.principal, on: call.connection, logger: call.logger)
            let lot = try await store.lot(session.lot, for: call.principal, on: call.connection, logger: call.logger)
            // A resident spends their own coupon; staff at the booth take the one shown to them.
            var spent: ParkingStore.CouponSpent?
            if let coupon {
                let holder =
                    call.principal.role == .resident
                    ? ResidentID(
                        try await OwnResident.of(call.principal.subjectID, community: lot.community, on: call.connection, logger: call.logger))
                    : nil
                spent = .init(coupon: coupon, holder: holder)
            }
            let (payment, quote) = try await store.pay(
                session, lot: lot, amount: m.amountFen, method: method, coupon: spent, by: call.principal.subjectID, on: call.connection,
                logger: call.logger)
            let after = try await store.session(id, for: call.principal, on: call.connection, logger: call.logger)
            return .with {
                $0.payment = .init(payment)
                $0.quote = .init(after, quote)
            }
        }
    }

    public func closeSession(request: ServerRequest<Linli_Parking_V1_CloseSessionRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Session>
    {
        let m = request.message
        let id = try Input.id(m.sessionID, field: "session_id", as: IDTag.Parking.self).uuid
        let note = try Input.text(m.note, field: "note", max: 500)
        return try await handler.write(request, context) { [store] call in
            let session = try await store.session(id, for: call.principal, on: call.connection, logger: call.logger)
            return .init(try await store.close(session, note: note, by: call.principal.subjectID, on: call.connection, logger: call.logger))
        }
    }

    public func correctOccupancy(request: ServerRequest<Linli_Parking_V1_CorrectOccupancyRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Lot>
    {
        let m = request.message
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        guard (0...100_000).contains(m.counted) else { throw LinliError.invalid("counted", "must be 0 to 100000") }
        return try await handler.write(request, context) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            try await store.correctOccupancy(lot, counted: Int(clamping: m.counted), on: call.connection, logger: call.logger)
            return .init(try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func createMerchant(request: ServerRequest<Linli_Parking_V1_CreateMerchantRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Merchant>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let name = try Input.text(m.name, field: "name", max: 100)
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            return .init(try await store.createMerchant(community: community, name: name, on: call.connection, logger: call.logger))
        }
    }

    public func buyCoupons(request: ServerRequest<Linli_Parking_V1_BuyCouponsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_CouponBatch>
    {
        let m = request.message
        let merchantID = try Input.id(m.merchantID, field: "merchant_id", as: IDTag.Parking.self).uuid
        let kind = try ProtoEnum.decode(m.kind, ParkingFee.Coupon.Kind.self, field: "kind")
        switch kind {
        case .time: guard (1...1_440).contains(m.value) else { throw LinliError.invalid("value", "a time coupon is 1 to 1440 minutes") }
        case .money: guard (1...100_000).contains(m.value) else { throw LinliError.invalid("value", "a money coupon is 1 to 100000 fen") }
        case .discount: guard (1...99).contains(m.value) else { throw LinliError.invalid("value", "a discount keeps 1 to 99 percent") }
        case .free: guard m.value == 0 else { throw LinliError.invalid("value", "a free coupon has no value") }
        }
        guard (0...100_000).contains(m.priceFen) else { throw LinliError.invalid("price_fen", "must be 0 to 100000") }
        guard (1...10_000).contains(m.quantity) else { throw LinliError.invalid("quantity", "must be 1 to 10000") }
        guard (1...366).contains(m.validDays) else { throw LinliError.invalid("valid_days", "must be 1 to 366") }
        let method = try BillingService.channel(m.method, field: "method")
        return try await handler.write(request, context) { [store] call in
            let merchant = try await store.merchant(merchantID, for: call.principal, on: call.connection, logger: call.logger)
            let batch = ParkingStore.Batch(
                id: UUIDv7.make(), community: merchant.community, merchant: merchant.id, kind: kind, value: m.value, priceFen: m.priceFen,
                quantity: Int(clamping: m.quantity), issued: 0, validDays: Int(clamping: m.validDays))
            return .init(try await store.buyCoupons(batch, method: method, by: call.principal.subjectID, on: call.connection, logger: call.logger))
        }
    }

    public func issueCoupon(request: ServerRequest<Linli_Parking_V1_IssueCouponRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_Coupon>
    {
        let m = request.message
        let batch = try Input.id(m.batchID, field: "batch_id", as: IDTag.Parking.self).uuid
        let plate = try Self.plate(m.plate)
        return try await handler.write(request, context) { [store] call in
            .init(try await store.issueCoupon(batch: batch, plate: plate, for: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func listCoupons(request: ServerRequest<Linli_Parking_V1_ListCouponsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ListCouponsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let plate = m.plate.isEmpty ? nil : try Self.plate(m.plate)
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let coupons = try await store.coupons(community: community, plate: plate, on: call.connection, logger: call.logger)
            return .with { $0.coupons = coupons.map(Linli_Parking_V1_Coupon.init) }
        }
    }

    public func getParkingReport(request: ServerRequest<Linli_Parking_V1_GetParkingReportRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Parking_V1_ParkingReport>
    {
        let m = request.message
        let lotID = try Input.id(m.lotID, field: "lot_id", as: IDTag.Parking.self).uuid
        let from = try Input.localDate(m.from, field: "from")
        let to = try Input.localDate(m.to, field: "to")
        guard from <= to else { throw LinliError.invalid("to", "must not be before from") }
        return try await handler.read(request) { [store] call in
            let lot = try await store.lot(lotID, for: call.principal, on: call.connection, logger: call.logger)
            let report = try await store.report(lot: lot, from: from, to: to, on: call.connection, logger: call.logger)
            return .with {
                $0.entries = Int32(clamping: report.entries)
                $0.exits = Int32(clamping: report.exits)
                $0.revenueFen = report.revenueFen
                $0.monthlyRevenueFen = report.monthlyRevenueFen
                $0.byRule = report.byRule.map { line in
                    .with {
                        $0.carClass = ProtoEnum.encode(line.carClass)
                        $0.feeRuleVersion = Int32(clamping: line.version)
                        $0.revenueFen = line.revenueFen
                        $0.sessions = Int32(clamping: line.sessions)
                    }
                }
                $0.averageStayMinutes = Int32(clamping: report.averageStayMinutes)
                $0.occupied = Int32(clamping: lot.occupied)
                $0.capacity = Int32(clamping: lot.capacity)
            }
        }
    }
}

extension Linli_Parking_V1_CreateLotRequest: IdempotentRequest {}
extension Linli_Parking_V1_UpdateLotRequest: IdempotentRequest {}
extension Linli_Parking_V1_AddLaneRequest: IdempotentRequest {}
extension Linli_Parking_V1_ConfigureSpaceRequest: IdempotentRequest {}
extension Linli_Parking_V1_SetFeeRuleRequest: IdempotentRequest {}
extension Linli_Parking_V1_IssuePermitRequest: IdempotentRequest {}
extension Linli_Parking_V1_RenewPermitRequest: IdempotentRequest {}
extension Linli_Parking_V1_RevokePermitRequest: IdempotentRequest {}
extension Linli_Parking_V1_AddListEntryRequest: IdempotentRequest {}
extension Linli_Parking_V1_RemoveListEntryRequest: IdempotentRequest {}
extension Linli_Parking_V1_RegisterVisitorCarRequest: IdempotentRequest {}
extension Linli_Parking_V1_ReserveSpaceRequest: IdempotentRequest {}
extension Linli_Parking_V1_CancelReservationRequest: IdempotentRequest {}
extension Linli_Parking_V1_PaySessionRequest: IdempotentRequest {}
extension Linli_Parking_V1_CloseSessionRequest: IdempotentRequest {}
extension Linli_Parking_V1_CorrectOccupancyRequest: IdempotentRequest {}
extension Linli_Parking_V1_CreateMerchantRequest: IdempotentRequest {}
extension Linli_Parking_V1_BuyCouponsRequest: IdempotentRequest {}
extension Linli_Parking_V1_IssueCouponRequest: IdempotentRequest {}
