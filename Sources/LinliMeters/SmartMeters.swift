import Foundation
import GRPCCore
import LinliAPI
import LinliAlarms
import LinliBilling
import LinliCore
import LinliDevices
import LinliTenancy
import Logging
import PostgresNIO
import ServiceLifecycle
import SwiftProtobuf

/// Meter readings from the gateway, inside the transaction that stores them: kept as sent and
/// noted on the bound meter (a code nobody bound is kept too, for when it is bound).
public struct MeterHandler: DeviceEventHandler {
    public init() {}

    public func handles(_ event: Linli_Device_V1_Event) -> Bool {
        if case .meter = event.body { return true }
        return false
    }

    public func handle(_ events: [DeviceStore.IncomingEvent], device: DeviceID, on connection: PostgresConnection, logger: Logger)
        async throws -> [Linli_Device_V1_ServerMessage]
    {
        var seqs: [Int64] = []
        var codes: [String] = []
        var values: [Int64] = []
        var times: [Date] = []
        for incoming in events {
            guard case .meter(let reading) = incoming.event.body, let value = Int64(exactly: reading.valueCenti) else { continue }
            seqs.append(incoming.seq)
            codes.append(reading.meterCode)
            values.append(value)
            times.append(incoming.deviceTime)
        }
        guard !seqs.isEmpty else { return [] }
        try await connection.run(
            """
            WITH r AS (
                INSERT INTO smart_meter_readings (device_id, seq, smart_meter_id, meter_code, value_centi, device_time)
                SELECT \(device.uuid), e.seq, m.id, e.code, e.value, e.t
                FROM unnest(\(seqs), \(codes), \(values), \(times)) AS e(seq, code, value, t)
                LEFT JOIN smart_meters m ON m.device_id = \(device.uuid) AND m.code = e.code
                ON CONFLICT (device_id, seq) DO NOTHING
                RETURNING smart_meter_id, value_centi, device_time
            ), latest AS (
                SELECT DISTINCT ON (smart_meter_id) smart_meter_id, value_centi, device_time FROM r
                WHERE smart_meter_id IS NOT NULL ORDER BY smart_meter_id, device_time DESC
            )
            UPDATE smart_meters m SET last_value_centi = latest.value_centi, last_read_at = latest.device_time
            FROM latest WHERE m.id = latest.smart_meter_id AND (m.last_read_at IS NULL OR m.last_read_at <= latest.device_time)
            """, logger: logger)
        return []
    }
}

/// Bound meters and the daily transfer into billing's meter readings.
public struct SmartMeterStore: Sendable {
    let devices: DeviceStore

    public init(database: Database) { devices = DeviceStore(database: database) }

    public struct Meter: Sendable {
        public var id: UUID
        public var device: UUID
        public var code: String
        public var room: UUID
        public var kind: MeterStore.Kind
        public var lastValueCenti: Int64?
        public var lastReadAt: Date?
        public var transferredThrough: String?
        public var lastError: String
        public var prepaid: Bool
    }

    public func bind(
        device: DeviceID, code: String, room: RoomID, kind: MeterStore.Kind, prepaid: Bool = false, for principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Meter {
        let rows = try await connection.run("SELECT community_id, kind FROM devices WHERE id = \(device.uuid)", logger: logger)
        var found: (UUID, String)?
        for try await row in rows.decode((UUID, String).self) { found = row }
        guard let (community, deviceKind) = found, principal.canAct(in: CommunityID(community)) else { throw LinliError.notFound("device") }
        guard deviceKind == "meter" else { throw LinliError.invalid("device_id", "is a \(deviceKind) device, not a METER") }
        guard try await Scope.building(of: room, in: CommunityID(community), on: connection, logger: logger) != nil else {
            throw LinliError.invalid("room_id", "is not a room of the device's community")
        }
        let id = UUIDv7.make()
        let made = try await connection.run(
            """
            INSERT INTO smart_meters (id, community_id, device_id, code, room_id, kind, prepaid)
            VALUES (\(id), \(community), \(device.uuid), \(code), \(room.uuid), \(kind.rawValue), \(prepaid))
            ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger)
        var ok = false
        for try await _ in made { ok = true }
        guard ok else { throw LinliError(.alreadyExists, "code: the device's code or the room's meter of this kind is bound already", field: "code") }
        // Readings that came before the binding now belong to it.
        try await connection.run(
            "UPDATE smart_meter_readings SET smart_meter_id = \(id) WHERE device_id = \(device.uuid) AND meter_code = \(code)",
            logger: logger)
        guard let meter = try await meters(community: CommunityID(community), on: connection, logger: logger).first(where: { $0.id == id }) else {
            throw LinliError(.internal, "the bound meter was not read back")
        }
        return meter
    }

    public func meters(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> [Meter] {
        let rows = try await connection.run(
            """
            SELECT m.id, m.device_id, m.code, m.room_id, m.kind,
                   (SELECT r.value_centi FROM smart_meter_readings r WHERE r.smart_meter_id = m.id ORDER BY r.device_time DESC LIMIT 1),
                   (SELECT max(r.device_time) FROM smart_meter_readings r WHERE r.smart_meter_id = m.id),
                   m.transferred_through::text, m.last_error, m.prepaid
            FROM smart_meters m WHERE m.community_id = \(community.uuid) ORDER BY m.device_id, m.code
            """, logger: logger)
        var result: [Meter] = []
        for try await r in rows.decode((UUID, UUID, String, UUID, String, Int64?, Date?, String?, String, Bool).self) {
            result.append(
                Meter(
                    id: r.0, device: r.1, code: r.2, room: r.3, kind: MeterStore.Kind(rawValue: r.4) ?? .water, lastValueCenti: r.5,
                    lastReadAt: r.6, transferredThrough: r.7, lastError: r.8, prepaid: r.9))
        }
        return result
    }

    /// For each bound meter of `community` (every community when nil): the last reading before
    /// today (local) becomes billing's reading for its day, when that day is after the last one
    /// transferred. Each meter in its own savepoint: a refused one keeps its error and raises a
    /// `meter.transfer` alarm; the others go on. Returns (transferred, refused).
    public func transfer(community: CommunityID?, on connection: PostgresConnection, logger: Logger) async throws -> (Int, Int) {
        let rows = try await connection.run(
            """
            SELECT m.id, m.community_id, m.device_id, m.code, m.room_id, m.kind, last.value_centi,
                   (last.device_time AT TIME ZONE community_zone(m.community_id))::date::text,
                   (SELECT u.id FROM users u JOIN user_communities uc ON uc.user_id = u.id
                    WHERE uc.community_id = m.community_id AND u.role = 'manager' AND u.status = 'active' ORDER BY u.id LIMIT 1)
            FROM smart_meters m
            CROSS JOIN LATERAL (
                SELECT r.value_centi, r.device_time FROM smart_meter_readings r
                WHERE r.smart_meter_id = m.id AND r.device_time < community_day_start(m.community_id, community_today(m.community_id))
                ORDER BY r.device_time DESC LIMIT 1
            ) last
            WHERE (\(community?.uuid)::uuid IS NULL OR m.community_id = \(community?.uuid)::uuid)
              AND (m.transferred_through IS NULL
                   OR (last.device_time AT TIME ZONE community_zone(m.community_id))::date > m.transferred_through)
            FOR UPDATE OF m SKIP LOCKED
            """, logger: logger)
        var due: [(UUID, UUID, UUID, String, UUID, String, Int64, String, UUID?)] = []
        for try await row in rows.decode((UUID, UUID, UUID, String, UUID, String, Int64, String, UUID?).self) { due.append(row) }
        var done = 0
        var refused = 0
        for (meter, community, device, code, room, kind, value, day, manager) in due {
            guard let manager, let kind = MeterStore.Kind(rawValue: kind) else { continue }
            let principal = Principal(
                tenantID: nil, subjectID: UserID(manager), displayName: "智能抄表", role: .manager, communityIDs: [CommunityID(community)],
                buildingIDs: [])
            try await connection.run("SAVEPOINT meter_transfer", logger: logger)
            do {
                _ = try await MeterStore().record(
                    .init(room: RoomID(room), kind: kind, readOn: day, valueCenti: value, replacement: false, oldFinalCenti: 0),
                    by: principal, on: connection, logger: logger)
                try await connection.run("RELEASE SAVEPOINT meter_transfer", logger: logger)
                try await connection.run(
                    "UPDATE smart_meters SET transferred_through = \(day)::date, last_error = '' WHERE id = \(meter)", logger: logger)
                done += 1
            } catch let error as LinliError where error.code != .unavailable && error.code != .internal {
                try await connection.run("ROLLBACK TO SAVEPOINT meter_transfer", logger: logger)
                let message = "\(day): \(error.message)"
                try await connection.run("UPDATE smart_meters SET last_error = \(message) WHERE id = \(meter)", logger: logger)
                try await Alarms.raise(
                    type: "meter.transfer", severity: "major", source: code, detail: String(message.prefix(400)), device: DeviceID(device),
                    on: connection, logger: logger)
                refused += 1
            }
        }
        return (done, refused)
    }
}

extension SmartMeterStore {
    public struct Credit: Sendable {
        public var id: UUID
        public var meter: UUID
        public var amountFen: Int64
        public var delivered: Date?
        public var createdAt: Date
        public var attempts: Int
    }

    /// A command carrying credit lives a day; the job sends it again after.
    static let creditTTL: Duration = .seconds(86_400)

    /// Takes the money (a liability until delivered) and sends the credit to the meter.
    public func topUp(
        meter id: UUID, amountFen: Int64, method: PaymentStore.Method, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Credit {
        let rows = try await connection.run(
            "SELECT community_id, device_id, code, prepaid FROM smart_meters WHERE id = \(id) FOR UPDATE", logger: logger)
        var found: (UUID, UUID, String, Bool)?
        for try await row in rows.decode((UUID, UUID, String, Bool).self) { found = row }
        guard let (community, device, code, prepaid) = found, principal.canAct(in: CommunityID(community)) else {
            throw LinliError.notFound("meter")
        }
        guard prepaid else { throw LinliError(.failedPrecondition, "meter_id: the meter is not a prepaid meter", field: "meter_id") }
        let entry = try await MeterCreditLedger.bought(
            amountFen, method: method, meter: id, community: CommunityID(community), by: principal.subjectID, on: connection, logger: logger)
        let credit = UUIDv7.make()
        let command = try await send(
            credit: credit, code: code, amountFen: amountFen, device: DeviceID(device), by: principal, on: connection, logger: logger)
        try await connection.run(
            """
            INSERT INTO smart_meter_credits (id, smart_meter_id, amount_fen, method, command_id, entry_id, created_by)
            VALUES (\(credit), \(id), \(amountFen), \(method.rawValue), \(command), \(entry), \(principal.subjectID.uuid))
            """, logger: logger)
        return try await self.credit(credit, for: principal, on: connection, logger: logger)
    }

    func send(
        credit: UUID, code: String, amountFen: Int64, device: DeviceID, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> UUID {
        let target = try await devices.device(device, for: principal, on: connection, logger: logger)
        var command = Linli_Device_V1_Command()
        command.meterCredit = .with {
            $0.meterCode = code
            $0.creditID = credit.uuidString.lowercased()
            $0.amountFen = amountFen
        }
        return try await devices.queue(
            command, action: "meter_credit", to: target, ttl: Self.creditTTL, by: principal.subjectID, on: connection, logger: logger
        ).id.uuid
    }

    public func credit(_ id: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Credit {
        let rows = try await connection.run(
            """
            SELECT c.id, c.smart_meter_id, c.amount_fen, c.delivered_at, c.created_at, c.attempts, m.community_id
            FROM smart_meter_credits c JOIN smart_meters m ON m.id = c.smart_meter_id WHERE c.id = \(id)
            """, logger: logger)
        for try await r in rows.decode((UUID, UUID, Int64, Date?, Date, Int32, UUID).self) where principal.canAct(in: CommunityID(r.6)) {
            return Credit(id: r.0, meter: r.1, amountFen: r.2, delivered: r.3, createdAt: r.4, attempts: Int(clamping: r.5))
        }
        throw LinliError.notFound("meter credit")
    }

    /// Books credits whose command the meter acknowledged, and sends again those whose command
    /// expired or failed: a credit is never dropped. Returns (delivered, resent).
    public func settleCredits(on connection: PostgresConnection, logger: Logger) async throws -> (Int, Int) {
        let done = try await connection.run(
            """
            SELECT c.id, c.smart_meter_id, c.amount_fen, m.community_id
            FROM smart_meter_credits c JOIN device_commands d ON d.id = c.command_id JOIN smart_meters m ON m.id = c.smart_meter_id
            WHERE c.delivered_at IS NULL AND d.state = 'succeeded'
            FOR UPDATE OF c SKIP LOCKED
            """, logger: logger)
        var delivered: [(UUID, UUID, Int64, UUID)] = []
        for try await row in done.decode((UUID, UUID, Int64, UUID).self) { delivered.append(row) }
        for (credit, meter, amount, community) in delivered {
            let entry = try await MeterCreditLedger.delivered(amount, meter: meter, community: CommunityID(community), on: connection, logger: logger)
            try await connection.run(
                "UPDATE smart_meter_credits SET delivered_at = now(), delivered_entry_id = \(entry) WHERE id = \(credit)", logger: logger)
        }
        let stale = try await connection.run(
            """
            SELECT c.id, c.amount_fen, m.device_id, m.code, m.community_id, c.created_by
            FROM smart_meter_credits c JOIN device_commands d ON d.id = c.command_id JOIN smart_meters m ON m.id = c.smart_meter_id
            JOIN devices dev ON dev.id = m.device_id
            WHERE c.delivered_at IS NULL AND d.state IN ('expired', 'failed', 'timed_out') AND dev.status = 'active'
            FOR UPDATE OF c SKIP LOCKED
            """, logger: logger)
        var resend: [(UUID, Int64, UUID, String, UUID, UUID)] = []
        for try await row in stale.decode((UUID, Int64, UUID, String, UUID, UUID).self) { resend.append(row) }
        for (credit, amount, device, code, community, by) in resend {
            let principal = Principal(
                tenantID: nil, subjectID: UserID(by), displayName: "预付费表重发", role: .manager, communityIDs: [CommunityID(community)],
                buildingIDs: [])
            let command = try await send(
                credit: credit, code: code, amountFen: amount, device: DeviceID(device), by: principal, on: connection, logger: logger)
            try await connection.run(
                "UPDATE smart_meter_credits SET command_id = \(command), attempts = attempts + 1 WHERE id = \(credit)", logger: logger)
        }
        return (delivered.count, resend.count)
    }
}

/// Every minute, for every active tenant: prepaid meter credits booked when acknowledged and
/// sent again when their command lapsed.
public struct MeterCreditJob: Service, Sendable {
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicJob.run(every: .seconds(60), first: .afterInterval, name: "meter credit", logger: logger) {
            try await database.inEachActiveTenant("meter credit", logger: logger) { connection in
                _ = try await SmartMeterStore(database: database).settleCredits(on: connection, logger: logger)
            }
        }
    }
}

/// Every hour, for every active tenant: the smart meters' finished days into billing.
public struct SmartMeterJob: Service, Sendable {
    let database: Database
    let interval: Duration
    let logger: Logger

    public init(database: Database, interval: Duration = .seconds(3_600), logger: Logger) {
        self.database = database
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicJob.run(every: interval, first: .afterInterval, name: "smart meter transfer", logger: logger) {
            try await database.inEachActiveTenant("smart meter transfer", logger: logger) { connection in
                _ = try await SmartMeterStore(database: database).transfer(community: nil, on: connection, logger: logger)
            }
        }
    }
}

/// The `linli.device.v1.MeterService` RPCs (meters.proto).
public struct MeterService: Sendable {
    let store: SmartMeterStore
    let handler: Handler

    public init(database: Database, logger: Logger) {
        store = SmartMeterStore(database: database)
        handler = Handler(database: database, logger: logger)
    }
}

extension MeterService: Linli_Device_V1_MeterService.ServiceProtocol {
    public func bindSmartMeter(request: ServerRequest<Linli_Device_V1_BindSmartMeterRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_SmartMeter>
    {
        let m = request.message
        let device: DeviceID = try Input.id(m.deviceID, field: "device_id")
        let room: RoomID = try Input.id(m.roomID, field: "room_id")
        _ = try Input.code(m.code)
        let kind = try ProtoEnum.decode(m.kind, MeterStore.Kind.self, field: "kind")
        return try await handler.write(request, context) { [store] call in
            .init(
                try await store.bind(
                    device: device, code: m.code, room: room, kind: kind, prepaid: m.prepaid, for: call.principal, on: call.connection,
                    logger: call.logger))
        }
    }

    public func listSmartMeters(request: ServerRequest<Linli_Device_V1_ListSmartMetersRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_ListSmartMetersResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let meters = try await store.meters(community: community, on: call.connection, logger: call.logger)
            return .with { $0.meters = meters.map(Linli_Device_V1_SmartMeter.init) }
        }
    }

    public func transferMeterReadings(request: ServerRequest<Linli_Device_V1_TransferMeterReadingsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_TransferMeterReadingsResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let (done, refused) = try await store.transfer(community: community, on: call.connection, logger: call.logger)
            return .with {
                $0.transferred = Int32(clamping: done)
                $0.refused = Int32(clamping: refused)
            }
        }
    }
}

extension MeterService {
    public func topUpSmartMeter(request: ServerRequest<Linli_Device_V1_TopUpSmartMeterRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_MeterCreditStatus>
    {
        let m = request.message
        let meter = try Input.id(m.meterID, field: "meter_id", as: IDTag.Alarm.self).uuid
        guard (1...10_000_000).contains(m.amountFen) else { throw LinliError.invalid("amount_fen", "must be 1 to 10000000") }
        let method = try BillingService.channel(m.method, field: "method")
        return try await handler.write(request, context) { [store] call in
            .init(
                try await store.topUp(
                    meter: meter, amountFen: m.amountFen, method: method, for: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func getMeterCredit(request: ServerRequest<Linli_Device_V1_GetMeterCreditRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_MeterCreditStatus>
    {
        let id = try Input.id(request.message.creditID, field: "credit_id", as: IDTag.Alarm.self).uuid
        return try await handler.read(request) { [store] call in
            .init(try await store.credit(id, for: call.principal, on: call.connection, logger: call.logger))
        }
    }
}

extension Linli_Device_V1_MeterCreditStatus {
    init(_ c: SmartMeterStore.Credit) {
        self.init()
        id = c.id.uuidString.lowercased()
        meterID = c.meter.uuidString.lowercased()
        amountFen = c.amountFen
        state = c.delivered == nil ? "sending" : "delivered"
        createdAt = Google_Protobuf_Timestamp(date: c.createdAt)
        if let at = c.delivered { deliveredAt = Google_Protobuf_Timestamp(date: at) }
        attempts = Int32(clamping: c.attempts)
    }
}

extension Linli_Device_V1_TopUpSmartMeterRequest: IdempotentRequest {}
extension Linli_Device_V1_BindSmartMeterRequest: IdempotentRequest {}
extension Linli_Device_V1_TransferMeterReadingsRequest: IdempotentRequest {}

extension Linli_Device_V1_SmartMeter {
    init(_ m: SmartMeterStore.Meter) {
        self.init()
        id = m.id.uuidString.lowercased()
        deviceID = m.device.uuidString.lowercased()
        code = m.code
        roomID = m.room.uuidString.lowercased()
        kind = ProtoEnum.encode(m.kind)
        lastValueCenti = m.lastValueCenti ?? 0
        if let at = m.lastReadAt { lastReadAt = Google_Protobuf_Timestamp(date: at) }
        transferredThrough = m.transferredThrough ?? ""
        lastError = m.lastError
        prepaid = m.prepaid
    }
}
