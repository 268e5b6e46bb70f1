import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Fee items, their bindings to rooms, and monthly bill generation, in the caller's tenant transaction.
public struct FeeDesk: Sendable {
    public init() {}

    public enum Kind: String, Sendable, CaseIterable { case monthly, quarterly, yearly, oneTime = "one_time" }
    public enum Rule: String, Sendable, CaseIterable { case area, fixed, metered }

    public struct Item: Sendable, Equatable {
        public var id: UUID
        public var community: CommunityID
        public var name: String
        public var kind: Kind
        public var rule: Rule
        public var unitPriceFen: Int64
        public var surchargeFen: Int64
        public var dueDay: Int
        /// For metered items: water, electricity or gas.
        public var meterKind: MeterDesk.Kind?
        public init(id: UUID, community: CommunityID, name: String, kind: Kind, rule: Rule, unitPriceFen: Int64, surchargeFen: Int64,
                    dueDay: Int, meterKind: MeterDesk.Kind? = nil) {
            self.meterKind = meterKind
            self.id = id
            self.community = community
            self.name = name
            self.kind = kind
            self.rule = rule
            self.unitPriceFen = unitPriceFen
            self.surchargeFen = surchargeFen
            self.dueDay = dueDay
        }
    }

    public struct Bill: Sendable, Equatable {
        public var id: UUID
        public var room: RoomID
        public var item: UUID
        public var itemName: String
        public var periodStart: String
        public var periodEnd: String
        public var billedDays: Int
        public var periodDays: Int
        public var amountFen: Int64
        public var settledFen: Int64
        public var dueOn: String
        public var openFen: Int64 { amountFen - settledFen }
    }

    public struct Run: Sendable, Equatable {
        public var created: Int
        public var alreadyBilled: Int
        public var chargedFen: Int64
    }

    public func createItem(_ item: Item, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Item {
        try principal.requireScope(item.community)
        let rows = try await connection.query("""
            INSERT INTO fee_items (id, community_id, name, kind, rule, unit_price_fen, surcharge_fen, due_day, meter_kind)
            SELECT \(item.id), id, \(item.name), \(item.kind.rawValue), \(item.rule.rawValue), \(item.unitPriceFen), \(item.surchargeFen),
                   \(Int16(item.dueDay)), \(item.meterKind?.rawValue)
            FROM communities WHERE id = \(item.community.uuid)
            ON CONFLICT (community_id, name) DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in rows { return item }
        throw LinliError(.alreadyExists, "name: this community already has a fee item with this name", field: "name")
    }

    /// Binds an item to rooms (all of the community's when `rooms` is empty); overlapping bindings are refused.
    public func bind(item: UUID, rooms: [RoomID], from startsOn: String, until endsOn: String?, by principal: Principal,
                     on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let community = try await community(ofItem: item, connection, logger)
        try principal.requireScope(community)
        let ids = rooms.map(\.uuid)
        let targets = try await connection.query("""
            SELECT count(*)::int4 FROM rooms WHERE community_id = \(community.uuid) AND id = ANY(\(ids)::uuid[])
            """, logger: logger)
        for try await count in targets.decode(Int32.self) where Int(count) != ids.count {
            throw LinliError.invalid("room_ids", "every room must be a room of the item's community")
        }
        let overlap = try await connection.query("""
            SELECT r.number FROM fee_bindings b JOIN rooms r ON r.id = b.room_id
            WHERE b.fee_item_id = \(item) AND (cardinality(\(ids)::uuid[]) = 0 OR b.room_id = ANY(\(ids)::uuid[]))
              AND daterange(b.starts_on, b.ends_on, '[]') && daterange(\(startsOn)::date, \(endsOn)::date, '[]')
            LIMIT 1
            """, logger: logger)
        for try await number in overlap.decode(String.self) {
            throw LinliError(.alreadyExists, "room_ids: room \(number) is already bound to this item for part of these dates", field: "room_ids")
        }
        let rows = try await connection.query("""
            INSERT INTO fee_bindings (id, fee_item_id, room_id, starts_on, ends_on)
            SELECT uuid_v7(), \(item), id, \(startsOn)::date, \(endsOn)::date FROM rooms
            WHERE community_id = \(community.uuid) AND (cardinality(\(ids)::uuid[]) = 0 OR id = ANY(\(ids)::uuid[]))
            RETURNING 1
            """, logger: logger)
        var bound = 0
        for try await _ in rows { bound += 1 }
        return bound
    }

    /// The month's bills for every monthly binding of the community: new ones are inserted and
    /// charged (receivable of room and item ← revenue of item) in this transaction; existing ones stay.
    public func generate(community: CommunityID, month: String, by principal: Principal, on connection: PostgresConnection,
                         logger: Logger) async throws -> Run {
        try principal.requireScope(community)
        try await Self.requireCommunity(community, connection, logger)
        let entry = UUIDv7.make()
        let first = month + "-01"
        // Amount: exact numeric, rounded half up to the fen once, after proration (billing.proto).
        let inserted = try await connection.query("""
            WITH period AS (SELECT \(first)::date AS s, (\(first)::date + interval '1 month' - interval '1 day')::date AS e),
            slots AS (
                SELECT b.room_id, i.id AS item, p.s, p.e,
                       CASE i.rule WHEN 'metered' THEN p.e - p.s + 1
                            ELSE least(coalesce(b.ends_on, p.e), p.e) - greatest(b.starts_on, p.s) + 1 END AS days,
                       p.e - p.s + 1 AS period_days,
                       CASE i.rule WHEN 'area' THEN r.area_centi_m2::numeric * i.unit_price_fen / 100
                                   WHEN 'fixed' THEN i.unit_price_fen
                                   -- metered: the usage of the readings taken in the month
                                   ELSE coalesce((SELECT sum(mr.usage_centi) FROM meters m JOIN meter_readings mr ON mr.meter_id = m.id
                                                  WHERE m.room_id = b.room_id AND m.kind = i.meter_kind
                                                    AND mr.read_on BETWEEN p.s AND p.e), 0)::numeric * i.unit_price_fen / 100 END
                         + i.surcharge_fen AS full_amount,
                       p.s + (i.due_day - 1) AS due
                FROM fee_items i JOIN fee_bindings b ON b.fee_item_id = i.id JOIN rooms r ON r.id = b.room_id CROSS JOIN period p
                WHERE i.community_id = \(community.uuid) AND i.kind = 'monthly'
                  AND b.starts_on <= p.e AND (b.ends_on IS NULL OR b.ends_on >= p.s)),
            priced AS (SELECT *, round(full_amount * days / period_days)::bigint AS amount FROM slots)
            INSERT INTO bills (id, community_id, room_id, fee_item_id, period_start, period_end, billed_days, period_days, amount_fen,
                               due_on, entry_id)
            SELECT uuid_v7(), \(community.uuid), room_id, item, s, e, days, period_days, amount, due, \(entry)
            FROM priced WHERE amount > 0
            ON CONFLICT (room_id, fee_item_id, period_start) DO NOTHING
            """, logger: logger)
        _ = inserted
        try await connection.query("""
            INSERT INTO ledger_accounts (id, community_id, kind, room_id, fee_item_id, normal)
            SELECT uuid_v7(), \(community.uuid), 'receivable', room_id, fee_item_id, 'debit'
            FROM (SELECT DISTINCT room_id, fee_item_id FROM bills WHERE entry_id = \(entry)) n
            ON CONFLICT DO NOTHING
            """, logger: logger)
        try await connection.query("""
            INSERT INTO ledger_accounts (id, community_id, kind, fee_item_id, normal)
            SELECT uuid_v7(), \(community.uuid), 'revenue', fee_item_id, 'credit'
            FROM (SELECT DISTINCT fee_item_id FROM bills WHERE entry_id = \(entry)) n
            ON CONFLICT DO NOTHING
            """, logger: logger)
        try await connection.query("""
            INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind, bill_id, created_by)
            SELECT \(entry), ra.id, rv.id, b.amount_fen, 'charge', b.id, \(principal.subjectID.uuid)
            FROM bills b
            JOIN ledger_accounts ra ON ra.community_id = b.community_id AND ra.kind = 'receivable' AND ra.subtype = ''
                 AND ra.room_id = b.room_id AND ra.resident_id IS NULL AND ra.fee_item_id = b.fee_item_id
            JOIN ledger_accounts rv ON rv.community_id = b.community_id AND rv.kind = 'revenue' AND rv.subtype = ''
                 AND rv.room_id IS NULL AND rv.resident_id IS NULL AND rv.fee_item_id = b.fee_item_id
            WHERE b.entry_id = \(entry)
            ORDER BY b.id
            """, logger: logger)
        let counts = try await connection.query("""
            SELECT (SELECT count(*)::int4 FROM bills WHERE entry_id = \(entry)),
                   (SELECT coalesce(sum(amount_fen), 0)::int8 FROM bills WHERE entry_id = \(entry)),
                   (SELECT count(*)::int4 FROM bills WHERE community_id = \(community.uuid) AND period_start = \(first)::date)
            """, logger: logger)
        for try await (created, charged, all) in counts.decode((Int32, Int64, Int32).self) {
            if charged > 0 {
                try await MetricDelta.record(.billingChargedFen, delta: charged, community: community, on: connection, logger: logger)
            }
            return Run(created: Int(created), alreadyBilled: Int(all - created), chargedFen: charged)
        }
        return Run(created: 0, alreadyBilled: 0, chargedFen: 0)
    }

    /// A room's bills with their settled amounts from the ledger, oldest due first.
    public func bills(room: RoomID, openOnly: Bool, for principal: Principal, on connection: PostgresConnection,
                      logger: Logger) async throws -> [Bill] {
        let community = try await Self.community(ofRoom: room, connection, logger)
        try principal.requireScope(community)
        return try await Self.bills(room: room, ids: nil, openOnly: openOnly, lock: false, connection, logger)
    }

    static func bills(room: RoomID, ids: [UUID]?, openOnly: Bool, lock: Bool, _ connection: PostgresConnection,
                      _ logger: Logger) async throws -> [Bill] {
        if lock {
            // Locked first, read after: a statement that waited for the lock still sees its old
            // snapshot in subqueries, so the settled amounts come from the next statement.
            try await connection.query("""
                SELECT 1 FROM bills WHERE room_id = \(room.uuid) AND (\(ids == nil) OR id = ANY(\(ids ?? [])::uuid[])) ORDER BY id FOR UPDATE
                """, logger: logger)
        }
        let rows = try await connection.query("""
            SELECT b.id, b.fee_item_id, i.name, b.period_start::text, b.period_end::text, b.billed_days, b.period_days, b.amount_fen,
                   bill_settled_fen(b.id),
                   b.due_on::text
            FROM bills b JOIN fee_items i ON i.id = b.fee_item_id
            WHERE b.room_id = \(room.uuid) AND (\(ids == nil) OR b.id = ANY(\(ids ?? [])::uuid[]))
            ORDER BY b.due_on, b.period_start, i.name, b.id
            """, logger: logger)
        var result: [Bill] = []
        for try await (id, item, name, start, end, days, periodDays, amount, settled, due) in rows.decode(
            (UUID, UUID, String, String, String, Int32, Int32, Int64, Int64, String).self) {
            let bill = Bill(id: id, room: room, item: item, itemName: name, periodStart: start, periodEnd: end, billedDays: Int(days),
                            periodDays: Int(periodDays), amountFen: amount, settledFen: settled, dueOn: due)
            if !openOnly || bill.openFen > 0 { result.append(bill) }
        }
        return result
    }

    func community(ofItem item: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> CommunityID {
        for try await id in try await connection.query("SELECT community_id FROM fee_items WHERE id = \(item)", logger: logger).decode(UUID.self) {
            return CommunityID(id)
        }
        throw LinliError.notFound("fee item")
    }

    static func community(ofRoom room: RoomID, _ connection: PostgresConnection, _ logger: Logger) async throws -> CommunityID {
        for try await id in try await connection.query("SELECT community_id FROM rooms WHERE id = \(room.uuid)", logger: logger).decode(UUID.self) {
            return CommunityID(id)
        }
        throw LinliError.notFound("room")
    }

    static func requireCommunity(_ community: CommunityID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        for try await _ in try await connection.query("SELECT 1 FROM communities WHERE id = \(community.uuid)", logger: logger) { return }
        throw LinliError.notFound("community")
    }
}
