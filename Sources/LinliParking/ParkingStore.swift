import Foundation
import LinliBilling
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Lots, lanes, permits, lists, visitor cars, sessions and payments, read and written in the
/// caller's tenant transaction. Everything found by id is checked against the caller's
/// communities: another community's (or tenant's) row is NOT_FOUND.
public struct ParkingStore: Sendable {
    /// Parking coupons (the commerce module's); without them a coupon is refused.
    let coupons: (any FeeCoupons)?

    public init(coupons: (any FeeCoupons)? = nil) { self.coupons = coupons }

    public struct Lot: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var code: String
        public var name: String
        public var kind: String
        public var parent: UUID?
        public var capacity: Int
        public var occupied: Int
        public var payWindowMinutes: Int
        public var visitorFreeMinutes: Int
        public var visitorDailyLimit: Int
        public var duplicateReadSeconds: Int
        public var ruleVersion: Int
    }

    static let lotColumns = """
        l.id, l.community_id, l.code, l.name, l.kind, l.parent_lot_id, l.capacity,
        (SELECT count(*) FROM parking_sessions s WHERE s.lot_id = l.id AND s.exited_at IS NULL)::int4 + l.occupancy_correction,
        l.pay_window_minutes, l.visitor_free_minutes, l.visitor_daily_limit, l.duplicate_read_seconds,
        coalesce((SELECT max(version) FROM parking_fee_rules r WHERE r.lot_id = l.id), 0)
        """

    static func lots(_ rows: PostgresRowSequence) async throws -> [Lot] {
        var result: [Lot] = []
        for try await r in rows.decode((UUID, UUID, String, String, String, UUID?, Int32, Int32, Int32, Int32, Int32, Int32, Int32).self) {
            result.append(
                Lot(
                    id: r.0, community: CommunityID(r.1), code: r.2, name: r.3, kind: r.4, parent: r.5, capacity: Int(clamping: r.6),
                    occupied: max(0, Int(clamping: r.7)), payWindowMinutes: Int(clamping: r.8), visitorFreeMinutes: Int(clamping: r.9),
                    visitorDailyLimit: Int(clamping: r.10),
                    duplicateReadSeconds: Int(clamping: r.11), ruleVersion: Int(clamping: r.12)))
        }
        return result
    }

    /// The lot, when the caller may act in its community.
    public func lot(_ id: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Lot {
        let rows = try await connection.run(
            PostgresQuery(unsafeSQL: "SELECT \(Self.lotColumns) FROM parking_lots l WHERE l.id = $1", binds: binds(id)), logger: logger)
        guard let lot = try await Self.lots(rows).first, principal.canAct(in: lot.community) else { throw LinliError.notFound("lot") }
        return lot
    }

    public func lots(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> [Lot] {
        let rows = try await connection.run(
            PostgresQuery(
                unsafeSQL: "SELECT \(Self.lotColumns) FROM parking_lots l WHERE l.community_id = $1 ORDER BY l.code",
                binds: binds(community.uuid)), logger: logger)
        return try await Self.lots(rows)
    }

    func binds(_ values: UUID...) -> PostgresBindings {
        var b = PostgresBindings()
        for v in values { b.append(v) }
        return b
    }

    public struct NewLot: Sendable {
        public var community: CommunityID
        public var code: String
        public var name: String
        public var kind: String
        public var parent: UUID?
        public var capacity: Int
        public var payWindowMinutes: Int
        public var visitorFreeMinutes: Int
        public var visitorDailyLimit: Int
        public var duplicateReadSeconds: Int

        public init(
            community: CommunityID, code: String, name: String, kind: String, parent: UUID?, capacity: Int, payWindowMinutes: Int,
            visitorFreeMinutes: Int, visitorDailyLimit: Int, duplicateReadSeconds: Int
        ) {
            self.community = community
            self.code = code
            self.name = name
            self.kind = kind
            self.parent = parent
            self.capacity = capacity
            self.payWindowMinutes = payWindowMinutes
            self.visitorFreeMinutes = visitorFreeMinutes
            self.visitorDailyLimit = visitorDailyLimit
            self.duplicateReadSeconds = duplicateReadSeconds
        }
    }

    public func createLot(_ new: NewLot, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Lot {
        try Scope.requireCommunity(principal, new.community)
        if let parent = new.parent {
            let outer = try await lot(parent, for: principal, on: connection, logger: logger)
            guard outer.community == new.community else { throw LinliError.notFound("parent lot") }
        }
        let id = UUIDv7.make()
        let rows = try await connection.run(
            """
            INSERT INTO parking_lots (id, community_id, code, name, kind, parent_lot_id, capacity, pay_window_minutes, visitor_free_minutes,
                                      visitor_daily_limit, duplicate_read_seconds)
            VALUES (\(id), \(new.community.uuid), \(new.code), \(new.name), \(new.kind), \(new.parent), \(Int32(clamping: new.capacity)),
                    \(Int32(clamping: new.payWindowMinutes)), \(Int32(clamping: new.visitorFreeMinutes)), \(Int32(clamping: new.visitorDailyLimit)),
                    \(Int32(clamping: new.duplicateReadSeconds)))
            ON CONFLICT (community_id, code) DO NOTHING RETURNING 1
            """, logger: logger)
        var made = false
        for try await _ in rows { made = true }
        guard made else { throw LinliError(.alreadyExists, "code: the community already has a lot with this code", field: "code") }
        return try await lot(id, for: principal, on: connection, logger: logger)
    }

    public func updateLot(_ lot: Lot, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE parking_lots SET name = \(lot.name), capacity = \(Int32(clamping: lot.capacity)),
                   pay_window_minutes = \(Int32(clamping: lot.payWindowMinutes)), visitor_free_minutes = \(Int32(clamping: lot.visitorFreeMinutes)),
                   visitor_daily_limit = \(Int32(clamping: lot.visitorDailyLimit)), duplicate_read_seconds = \(Int32(clamping: lot.duplicateReadSeconds))
            WHERE id = \(lot.id)
            """, logger: logger)
    }

    /// Sets the occupancy correction so that the lot shows `counted` cars inside.
    public func correctOccupancy(_ lot: Lot, counted: Int, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE parking_lots l SET occupancy_correction =
                \(Int32(clamping: counted)) - (SELECT count(*) FROM parking_sessions s WHERE s.lot_id = l.id AND s.exited_at IS NULL)::int4
            WHERE l.id = \(lot.id)
            """, logger: logger)
    }

    public struct Lane: Sendable {
        public var id: UUID
        public var lot: UUID
        public var device: UUID
        public var code: String
        public var name: String
        public var direction: String
        public var tempCarsEnter: Bool
        public var charges: Bool
        public var reentry: Bool
        public var exitWithoutEntry: Bool

        public init(
            id: UUID, lot: UUID, device: UUID, code: String, name: String, direction: String, tempCarsEnter: Bool, charges: Bool, reentry: Bool,
            exitWithoutEntry: Bool
        ) {
            self.id = id
            self.lot = lot
            self.device = device
            self.code = code
            self.name = name
            self.direction = direction
            self.tempCarsEnter = tempCarsEnter
            self.charges = charges
            self.reentry = reentry
            self.exitWithoutEntry = exitWithoutEntry
        }
    }

    public func addLane(_ lane: Lane, lot: Lot, on connection: PostgresConnection, logger: Logger) async throws -> Lane {
        let device = try await connection.run(
            "SELECT kind FROM devices WHERE id = \(lane.device) AND community_id = \(lot.community.uuid) AND status <> 'revoked'",
            logger: logger)
        var kind: String?
        for try await k in device.decode(String.self) { kind = k }
        guard let kind else { throw LinliError.notFound("device") }
        guard kind == "barrier" else { throw LinliError.invalid("device_id", "is a \(kind) device, not a barrier") }
        let rows = try await connection.run(
            """
            INSERT INTO parking_lanes (id, community_id, lot_id, device_id, code, name, direction, temp_cars_enter, charges, reentry,
                                       exit_without_entry)
            VALUES (\(lane.id), \(lot.community.uuid), \(lot.id), \(lane.device), \(lane.code), \(lane.name), \(lane.direction),
                    \(lane.tempCarsEnter), \(lane.charges), \(lane.reentry), \(lane.exitWithoutEntry))
            ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger)
        var made = false
        for try await _ in rows { made = true }
        guard made else { throw LinliError(.alreadyExists, "code: the lot or the device already has a lane with this code", field: "code") }
        return lane
    }

    public func lanes(lot: UUID, on connection: PostgresConnection, logger: Logger) async throws -> [Lane] {
        let rows = try await connection.run(
            """
            SELECT id, lot_id, device_id, code, name, direction, temp_cars_enter, charges, reentry, exit_without_entry
            FROM parking_lanes WHERE lot_id = \(lot) ORDER BY code
            """, logger: logger)
        var result: [Lane] = []
        for try await r in rows.decode((UUID, UUID, UUID, String, String, String, Bool, Bool, Bool, Bool).self) {
            result.append(
                Lane(
                    id: r.0, lot: r.1, device: r.2, code: r.3, name: r.4, direction: r.5, tempCarsEnter: r.6, charges: r.7, reentry: r.8,
                    exitWithoutEntry: r.9))
        }
        return result
    }

    public func configureSpace(_ space: UUID, lot: Lot, oneCarInside: Bool, on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.run(
            """
            UPDATE parking_spaces SET lot_id = \(lot.id), one_car_inside = \(oneCarInside)
            WHERE id = \(space) AND community_id = \(lot.community.uuid) RETURNING 1
            """, logger: logger)
        var found = false
        for try await _ in rows { found = true }
        guard found else { throw LinliError.notFound("parking space") }
    }

    public struct RuleVersion: Sendable {
        public var id: UUID
        public var lot: UUID
        public var version: Int
        public var name: String
        public var rule: ParkingFeeRule
        public var createdAt: Date
    }

    public func setRule(_ rule: ParkingFeeRule, name: String, lot: Lot, by user: UserID, on connection: PostgresConnection, logger: Logger)
        async throws -> RuleVersion
    {
        let spec = String(decoding: try JSONEncoder().encode(rule), as: UTF8.self)
        let id = UUIDv7.make()
        // The lot row is locked so two new versions at once number one after the other.
        try await connection.run("SELECT 1 FROM parking_lots WHERE id = \(lot.id) FOR UPDATE", logger: logger)
        let rows = try await connection.run(
            """
            INSERT INTO parking_fee_rules (id, lot_id, version, name, spec, created_by)
            SELECT \(id), \(lot.id), coalesce(max(version), 0) + 1, \(name), \(spec)::jsonb, \(user.uuid)
            FROM parking_fee_rules WHERE lot_id = \(lot.id)
            RETURNING version, created_at
            """, logger: logger)
        for try await (version, at) in rows.decode((Int32, Date).self) {
            return RuleVersion(id: id, lot: lot.id, version: Int(clamping: version), name: name, rule: rule, createdAt: at)
        }
        throw LinliError(.internal, "fee rule not stored")
    }

    public func rules(lot: UUID, on connection: PostgresConnection, logger: Logger) async throws -> [RuleVersion] {
        let rows = try await connection.run(
            "SELECT id, version, name, spec::text, created_at FROM parking_fee_rules WHERE lot_id = \(lot) ORDER BY version DESC",
            logger: logger)
        var result: [RuleVersion] = []
        for try await (id, version, name, spec, at) in rows.decode((UUID, Int32, String, String, Date).self) {
            guard let rule = try? JSONDecoder().decode(ParkingFeeRule.self, from: Data(spec.utf8)) else { continue }
            result.append(RuleVersion(id: id, lot: lot, version: Int(clamping: version), name: name, rule: rule, createdAt: at))
        }
        return result
    }

    public func rule(lot: UUID, version: Int?, on connection: PostgresConnection, logger: Logger) async throws -> (
        version: Int, rule: ParkingFeeRule
    )? {
        guard let found = try await ParkingFacts.rule(lot: lot, version: version, on: connection, logger: logger) else { return nil }
        return (found.version, found.rule)
    }
}
