import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Fee items, their bindings to rooms, and monthly bill generation, in the caller's tenant transaction.
public struct FeeStore: Sendable {
    public init() {}

    public enum Kind: String, Sendable, CaseIterable { case monthly, quarterly, yearly, oneTime = "one_time" }
    public enum Rule: String, Sendable, CaseIterable { case area, fixed, metered, rent }
    public enum Category: String, Sendable, CaseIterable { case property, utilities, parking, rent, other }

    /// A tier of a metered price: usage up to `upToCenti` (nil on the last tier) at `unitPriceFen`.
    public struct Tier: Sendable, Equatable {
        public var upToCenti: Int64?
        public var unitPriceFen: Int64
        public init(upToCenti: Int64?, unitPriceFen: Int64) {
            self.upToCenti = upToCenti
            self.unitPriceFen = unitPriceFen
        }
    }

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
        public var meterKind: MeterStore.Kind?
        public var category: Category = .property
        public var cycleDay = 1
        public var lateFeePer10kDaily = 0
        public var graceDays = 0
        public var priority = 100
        public var tiers: [Tier] = []
        public var yearlyIncreaseBP = 0
        public init(
            id: UUID, community: CommunityID, name: String, kind: Kind, rule: Rule, unitPriceFen: Int64, surchargeFen: Int64,
            dueDay: Int, meterKind: MeterStore.Kind? = nil
        ) {
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
        public var parkingSpace: UUID?
        /// Late fees charged so far; part of `openFen`.
        public var lateFeeChargedFen: Int64
        public var waivedFen: Int64
        /// Charged (amount and late fees) less settled and waived.
        public var openFen: Int64
        /// Accrued today and not yet charged.
        public var lateFeeDueFen: Int64
        public var priority: Int
        public var category: Category
        public var totalDueFen: Int64 { openFen + lateFeeDueFen }
    }

    public struct Run: Sendable, Equatable {
        public var created: Int
        public var alreadyBilled: Int
        public var chargedFen: Int64
    }

    public func createItem(_ item: Item, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Item {
        try Scope.requireCommunity(principal, item.community)
        let rows = try await connection.run(
            """
            INSERT INTO fee_items (id, community_id, name, kind, rule, unit_price_fen, surcharge_fen, due_day, meter_kind, category, cycle_day,
                                   late_fee_per_10k_daily, grace_days, priority, tier_limits_centi, tier_prices_fen, yearly_increase_bp)
            SELECT \(item.id), id, \(item.name), \(item.kind.rawValue), \(item.rule.rawValue), \(item.unitPriceFen), \(item.surchargeFen),
                   \(Int16(item.dueDay)), \(item.meterKind?.rawValue), \(item.category.rawValue), \(Int16(item.cycleDay)),
                   \(Int32(item.lateFeePer10kDaily)), \(Int32(item.graceDays)), \(Int32(item.priority)),
                   \(item.tiers.isEmpty ? nil : item.tiers.compactMap(\.upToCenti)), \(item.tiers.isEmpty ? nil : item.tiers.map(\.unitPriceFen)),
                   \(Int32(item.yearlyIncreaseBP))
            FROM communities WHERE id = \(item.community.uuid)
            ON CONFLICT (community_id, name) DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in rows { return item }
        throw LinliError(.alreadyExists, "name: this community already has a fee item with this name", field: "name")
    }

    /// Binds an item to rooms (all of the community's when both lists are empty) or to parking
    /// spaces, each billed to its room; overlapping bindings are refused. `amountFen` is the
    /// binding's own price: required for rent, optional for fixed items, refused otherwise.
    public func bind(
        item: UUID, rooms: [RoomID], spaces: [UUID] = [], amountFen: Int64? = nil, from startsOn: String, until endsOn: String?,
        by principal: Principal, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int {
        let community = try await community(ofItem: item, connection, logger)
        try Scope.requireCommunity(principal, community)
        let rule = try await rule(ofItem: item, connection, logger)
        switch (rule, amountFen) {
        case (.rent, nil): throw LinliError.invalid("amount_fen", "is required for rent: the rent per period")
        case (.area, .some), (.metered, .some): throw LinliError.invalid("amount_fen", "is only for rent and fixed items")
        default: break
        }
        if !rooms.isEmpty, !spaces.isEmpty { throw LinliError.invalid("parking_space_ids", "bind rooms or parking spaces, not both") }
        let ids = rooms.map(\.uuid)
        let targets = try await connection.run(
            """
            SELECT (SELECT count(*)::int4 FROM community_rooms(\(community.uuid)) WHERE room_id = ANY(\(ids)::uuid[])),
                   (SELECT count(*)::int4 FROM parking_spaces WHERE community_id = \(community.uuid) AND id = ANY(\(spaces)::uuid[])),
                   (SELECT min(code) FROM parking_spaces WHERE id = ANY(\(spaces)::uuid[]) AND room_id IS NULL)
            """, logger: logger)
        for try await (roomCount, spaceCount, roomless) in targets.decode((Int32, Int32, String?).self) {
            if Int(roomCount) != ids.count { throw LinliError.invalid("room_ids", "every room must be a room of the item's community") }
            if Int(spaceCount) != spaces.count {
                throw LinliError.invalid("parking_space_ids", "every parking space must be a space of the item's community")
            }
            if let roomless { throw LinliError.invalid("parking_space_ids", "space \(roomless) belongs to no room; set its room first") }
        }
        // The (room, space) pairs to bind.
        let pairs = """
            SELECT room_id, NULL::uuid AS space_id FROM community_rooms($1)
            WHERE cardinality($3::uuid[]) = 0 AND (cardinality($2::uuid[]) = 0 OR room_id = ANY($2::uuid[]))
            UNION ALL
            SELECT room_id, id FROM parking_spaces WHERE id = ANY($3::uuid[])
            """
        var binds = PostgresBindings()
        binds.append(community.uuid)
        binds.append(ids)
        binds.append(spaces)
        binds.append(item)
        binds.append(startsOn)
        binds.append(endsOn)
        let overlap = try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    WITH pairs AS (\(pairs))
                    SELECT coalesce(s.code, r.number) FROM fee_bindings b JOIN pairs p ON p.room_id = b.room_id
                         AND p.space_id IS NOT DISTINCT FROM b.parking_space_id
                    JOIN rooms r ON r.id = b.room_id LEFT JOIN parking_spaces s ON s.id = b.parking_space_id
                    WHERE b.fee_item_id = $4 AND daterange(b.starts_on, b.ends_on, '[]') && daterange($5::date, $6::date, '[]')
                    LIMIT 1
                    """, binds: binds), logger: logger)
        for try await label in overlap.decode(String.self) {
            let field = spaces.isEmpty ? "room_ids" : "parking_space_ids"
            throw LinliError(.alreadyExists, "\(field): \(label) is already bound to this item for part of these dates", field: field)
        }
        binds.append(amountFen)
        let rows = try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    WITH pairs AS (\(pairs))
                    INSERT INTO fee_bindings (id, fee_item_id, room_id, parking_space_id, starts_on, ends_on, amount_fen)
                    SELECT uuid_v7(), $4, room_id, space_id, $5::date, $6::date, $7 FROM pairs
                    RETURNING room_id
                    """, binds: binds), logger: logger)
        var bound: [UUID] = []
        for try await room in rows.decode(UUID.self) { bound.append(room) }
        try await Ledger.openReceivables(item: item, rooms: bound, community: community, connection, logger)
        return bound.count
    }

    /// The bills of every item whose period starts in `month`: new ones are inserted and charged
    /// (receivable of room and item ← revenue of item) in this transaction; existing ones stay.
    public func generate(
        community: CommunityID, month: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Run {
        try Scope.requireCommunity(principal, community)
        try await Self.requireCommunity(community, connection, logger)
        let entry = UUIDv7.make()
        let first = month + "-01"
        // Periods and amounts as billing.proto states them: exact numeric, rounded half up to the fen once, after proration.
        let billed: PostgresQuery = """
            month AS (SELECT \(first)::date AS m),
            slots AS (
                SELECT b.room_id, b.parking_space_id, i.id AS item, p.s, p.e,
                       CASE WHEN i.rule = 'metered' OR i.kind = 'one_time' THEN p.e - p.s + 1
                            ELSE least(coalesce(b.ends_on, p.e), p.e) - greatest(b.starts_on, p.s) + 1 END AS days,
                       p.e - p.s + 1 AS period_days,
                       CASE i.rule
                           WHEN 'area' THEN r.area_centi_m2::numeric * i.unit_price_fen * greatest(k.months, 1) / 100
                           WHEN 'fixed' THEN coalesce(b.amount_fen, i.unit_price_fen)
                           WHEN 'rent' THEN b.amount_fen * power(1 + i.yearly_increase_bp / 10000.0,
                                                                 extract(year FROM age(greatest(p.s, b.starts_on), b.starts_on)))
                           ELSE (SELECT CASE WHEN i.tier_prices_fen IS NULL THEN u.usage * i.unit_price_fen
                                             ELSE (SELECT sum(greatest(0, least(u.usage, coalesce(t.lim, u.usage)) - coalesce(t.prev, 0)) * t.price)
                                                   FROM (SELECT lim, price, lag(lim) OVER (ORDER BY n) AS prev
                                                         FROM unnest(i.tier_limits_centi || NULL::bigint, i.tier_prices_fen)
                                                              WITH ORDINALITY AS x (lim, price, n)) t) END
                                 FROM (SELECT coalesce(sum(mr.usage_centi), 0)::numeric AS usage
                                       FROM meters mt JOIN meter_readings mr ON mr.meter_id = mt.id
                                       WHERE mt.room_id = b.room_id AND mt.kind = i.meter_kind AND mr.read_on BETWEEN p.s AND p.e) u) / 100
                       END + i.surcharge_fen AS full_amount,
                       p.s + (i.due_day - 1) AS due
                FROM fee_items i JOIN fee_bindings b ON b.fee_item_id = i.id JOIN rooms r ON r.id = b.room_id CROSS JOIN month
                CROSS JOIN LATERAL (SELECT CASE i.kind WHEN 'monthly' THEN 1 WHEN 'quarterly' THEN 3 WHEN 'yearly' THEN 12 ELSE 0 END AS months) k
                CROSS JOIN LATERAL (
                    SELECT CASE WHEN i.kind = 'one_time' THEN b.starts_on ELSE month.m + (i.cycle_day - 1) END AS s,
                           CASE WHEN i.kind = 'one_time' THEN b.starts_on
                                ELSE (month.m + (i.cycle_day - 1) + make_interval(months => k.months) - interval '1 day')::date END AS e) p
                WHERE i.community_id = \(community.uuid)
                  AND CASE i.kind WHEN 'monthly' THEN true
                                  WHEN 'quarterly' THEN extract(month FROM month.m) IN (1, 4, 7, 10)
                                  WHEN 'yearly' THEN extract(month FROM month.m) = 1
                                  ELSE b.starts_on >= month.m AND b.starts_on < month.m + interval '1 month' END
                  AND b.starts_on <= p.e AND (b.ends_on IS NULL OR b.ends_on >= p.s)),
            priced AS (SELECT *, round(full_amount * days / period_days)::bigint AS amount FROM slots),
            billed AS (
                INSERT INTO bills (id, community_id, room_id, parking_space_id, fee_item_id, period_start, period_end, billed_days, period_days,
                                   amount_fen, due_on, entry_id)
                SELECT uuid_v7(), \(community.uuid), room_id, parking_space_id, item, s, e, days, period_days, amount, due, \(entry)
                FROM priced WHERE amount > 0
                ON CONFLICT ON CONSTRAINT bills_one_per_period DO NOTHING
                RETURNING id, community_id, room_id, fee_item_id, amount_fen)
            """
        let (bills, charged) = try await Ledger.insertCharged(
            bills: billed, entry: entry, community: community, by: principal.subjectID, connection, logger)
        if charged > 0 {
            try await MetricDelta.record(.billingChargedFen, delta: charged, community: community, on: connection, logger: logger)
        }
        let all = try await connection.run(
            """
            SELECT count(*)::int4 FROM bills WHERE community_id = \(community.uuid)
               AND period_start >= \(first)::date AND period_start < \(first)::date + interval '1 month'
            """, logger: logger)
        for try await all in all.decode(Int32.self) {
            return Run(created: bills, alreadyBilled: Int(clamping: all) - bills, chargedFen: charged)
        }
        return Run(created: bills, alreadyBilled: 0, chargedFen: charged)
    }

    /// A room's bills with their settled amounts from the ledger, oldest due first.
    public func bills(
        room: RoomID, openOnly: Bool, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Bill] {
        let community = try await Self.community(ofRoom: room, connection, logger)
        try Scope.requireCommunity(principal, community)
        return try await Self.bills(room: room, ids: nil, openOnly: openOnly, lock: false, connection, logger)
    }

    static func bills(
        room: RoomID, ids: [UUID]?, openOnly: Bool, lock: Bool, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> [Bill] {
        if lock {
            // Locked first, read after: a statement that waited for the lock still sees its old
            // snapshot in subqueries, so the settled amounts come from the next statement.
            try await connection.run(
                """
                SELECT 1 FROM bills WHERE room_id = \(room.uuid) AND (\(ids == nil) OR id = ANY(\(ids ?? [])::uuid[])) ORDER BY id FOR UPDATE
                """, logger: logger)
        }
        let rows = try await connection.run(
            """
            SELECT b.id, b.fee_item_id, i.name, b.period_start::text, b.period_end::text, b.billed_days, b.period_days, b.amount_fen,
                   l.settled_fen, b.due_on::text, b.parking_space_id, l.late_fee_fen, l.waived_fen, l.open_fen,
                   i.late_fee_per_10k_daily, i.grace_days, l.late_fee_through::text, community_today(b.community_id)::text, i.priority, i.category
            FROM bills b JOIN fee_items i ON i.id = b.fee_item_id CROSS JOIN LATERAL bill_ledger(b.id) l
            WHERE b.room_id = \(room.uuid) AND (\(ids == nil) OR b.id = ANY(\(ids ?? [])::uuid[]))
            ORDER BY b.due_on, b.period_start, i.name, b.id
            """, logger: logger)
        var result: [Bill] = []
        for try await (
            id, item, name, start, end, days, periodDays, amount, settled, due, space, late, waived, open, rate, grace, through, today, priority,
            category
        )
            in rows.decode(
                (
                    UUID, UUID, String, String, String, Int32, Int32, Int64, Int64, String, UUID?, Int64, Int64, Int64, Int32, Int32, String?,
                    String, Int32, String
                ).self)
        {
            let lateDue = LateFee.due(
                .init(
                    amountFen: amount, lateFeeChargedFen: late, settledFen: settled, waivedFen: waived, per10kDaily: Int(clamping: rate),
                    graceDays: Int(clamping: grace), dueOn: due, chargedThrough: through), today: today)
            let bill = Bill(
                id: id, room: room, item: item, itemName: name, periodStart: start, periodEnd: end, billedDays: Int(clamping: days),
                periodDays: Int(clamping: periodDays), amountFen: amount, settledFen: settled, dueOn: due, parkingSpace: space,
                lateFeeChargedFen: late, waivedFen: waived, openFen: open, lateFeeDueFen: lateDue, priority: Int(clamping: priority),
                category: Category(rawValue: category) ?? .other)
            if !openOnly || bill.totalDueFen > 0 { result.append(bill) }
        }
        return result
    }

    func community(ofItem item: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> CommunityID {
        for try await id in try await connection.run("SELECT community_id FROM fee_items WHERE id = \(item)", logger: logger).decode(UUID.self) {
            return CommunityID(id)
        }
        throw LinliError.notFound("fee item")
    }

    func rule(ofItem item: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Rule {
        for try await raw in try await connection.run("SELECT rule FROM fee_items WHERE id = \(item)", logger: logger).decode(String.self) {
            if let rule = Rule(rawValue: raw) { return rule }
        }
        throw LinliError.notFound("fee item")
    }

    static func community(ofRoom room: RoomID, _ connection: PostgresConnection, _ logger: Logger) async throws -> CommunityID {
        try await Scope.communityOf(room: room, on: connection, logger: logger)
    }

    static func requireCommunity(_ community: CommunityID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await Scope.requireExists(community, on: connection, logger: logger)
    }
}
