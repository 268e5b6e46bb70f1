import Foundation
import LinliCore
import Logging
import PostgresNIO

/// Group buys (拼团), in the caller's tenant transaction: campaigns, the merchants' deals in
/// them, and the groups residents open and join. A member is an ordinary order with
/// `group_buy_id`; the group's seats and paid members change under its row lock, always taken
/// after the member's order row (the order every payment and cancel locks first), so the deadline
/// job, a payment notice and a cancel never deadlock and never both win.
public struct GroupBuyStore: Sendable {
    public init() {}

    public enum State: String, Sendable, CaseIterable { case forming, succeeded, failed }

    public struct Campaign: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var title: String
        public var description: String
        public var groupSize: Int32
        public var formHours: Int32
        public var startsAt: Date
        public var endsAt: Date
        public var closed: Bool
        public var createdAt: Date

        public init(
            id: UUID, community: CommunityID, title: String, description: String, groupSize: Int32, formHours: Int32, startsAt: Date,
            endsAt: Date, closed: Bool = false, createdAt: Date = Date()
        ) {
            self.id = id
            self.community = community
            self.title = title
            self.description = description
            self.groupSize = groupSize
            self.formHours = formHours
            self.startsAt = startsAt
            self.endsAt = endsAt
            self.closed = closed
            self.createdAt = createdAt
        }

        /// New groups may open now.
        func open(at time: Date) -> Bool { !closed && startsAt <= time && time < endsAt }
    }

    public struct Group: Sendable {
        public var id: UUID
        public var deal: UUID
        public var size: Int32
        public var joined: Int32
        public var paid: Int32
        public var state: State
        public var deadline: Date
        public var createdAt: Date
        public var closedAt: Date?
    }

    public struct Deal: Sendable {
        public var id: UUID
        public var campaign: UUID
        public var community: CommunityID
        public var merchant: UUID
        public var merchantName: String
        public var sku: UUID
        public var goods: UUID
        public var goodsName: String
        public var spec: String
        public var priceFen: Int64
        public var groupPriceFen: Int64
        public var state: MerchantStore.JoinState
        public var reason: String
        public var forming: [Group] = []
    }

    // MARK: campaigns

    static let campaignColumns =
        "id, community_id, title, description, group_size, form_hours, starts_at, ends_at, closed, created_at"

    func campaigns(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Campaign] {
        var result: [Campaign] = []
        for try await r in try await connection.run(query, logger: logger).decode(
            (UUID, UUID, String, String, Int32, Int32, Date, Date, Bool, Date).self)
        {
            result.append(
                Campaign(
                    id: r.0, community: CommunityID(r.1), title: r.2, description: r.3, groupSize: r.4, formHours: r.5, startsAt: r.6,
                    endsAt: r.7, closed: r.8, createdAt: r.9))
        }
        return result
    }

    public func campaign(_ id: UUID, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> Campaign {
        var b = PostgresBindings()
        b.append(id)
        let lock = forUpdate ? " FOR UPDATE" : ""
        guard
            let found = try await campaigns(
                PostgresQuery(unsafeSQL: "SELECT \(Self.campaignColumns) FROM group_buy_campaigns WHERE id = $1\(lock)", binds: b),
                connection, logger
            ).first
        else { throw LinliError.notFound("group buy campaign") }
        return found
    }

    public func publish(_ c: Campaign, by user: UserID, on connection: PostgresConnection, logger: Logger) async throws -> Campaign {
        try await connection.run(
            """
            INSERT INTO group_buy_campaigns (id, community_id, title, description, group_size, form_hours, starts_at, ends_at, created_by)
            VALUES (\(c.id), \(c.community.uuid), \(c.title), \(c.description), \(c.groupSize), \(c.formHours), \(c.startsAt), \(c.endsAt),
                    \(user.uuid))
            """, logger: logger)
        return try await campaign(c.id, on: connection, logger: logger)
    }

    public func close(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Campaign {
        try await connection.run("UPDATE group_buy_campaigns SET closed = true WHERE id = \(id)", logger: logger)
        return try await campaign(id, on: connection, logger: logger)
    }

    // MARK: deals

    static let dealColumns = """
        d.id, d.campaign_id, k.community_id, d.merchant_id, m.name, d.sku_id, s.goods_id, g.name, s.spec,
        coalesce(cp.price_fen, s.price_fen), d.group_price_fen, d.state, d.reason
        """
    static let dealFrom = """
        group_buy_deals d JOIN group_buy_campaigns k ON k.id = d.campaign_id JOIN merchants m ON m.id = d.merchant_id
        JOIN skus s ON s.id = d.sku_id JOIN goods g ON g.id = s.goods_id
        LEFT JOIN sku_community_prices cp ON cp.sku_id = s.id AND cp.community_id = k.community_id
        """

    func deals(_ query: PostgresQuery, forming: Bool, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Deal] {
        var result: [Deal] = []
        for try await r in try await connection.run(query, logger: logger).decode(
            (UUID, UUID, UUID, UUID, String, UUID, UUID, String, String, Int64, Int64, String, String).self)
        {
            result.append(
                Deal(
                    id: r.0, campaign: r.1, community: CommunityID(r.2), merchant: r.3, merchantName: r.4, sku: r.5, goods: r.6, goodsName: r.7,
                    spec: r.8, priceFen: r.9, groupPriceFen: r.10, state: MerchantStore.JoinState(rawValue: r.11) ?? .requested, reason: r.12))
        }
        guard forming, !result.isEmpty else { return result }
        var index: [UUID: Int] = [:]
        for (i, d) in result.enumerated() { index[d.id] = i }
        for group in try await groups(
            """
            SELECT \(unescaped: Self.groupColumns) FROM (
                SELECT *, row_number() OVER (PARTITION BY deal_id ORDER BY deadline, id) AS n FROM group_buys
                WHERE deal_id = ANY(\(result.map(\.id))::uuid[]) AND state = 'forming' AND deadline > now()) f
            WHERE n <= 20 ORDER BY deadline, id
            """, connection, logger)
        {
            if let i = index[group.deal] { result[i].forming.append(group) }
        }
        return result
    }

    public func deal(_ id: UUID, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> Deal {
        var b = PostgresBindings()
        b.append(id)
        let lock = forUpdate ? " FOR UPDATE OF d" : ""
        guard
            let found = try await deals(
                PostgresQuery(unsafeSQL: "SELECT \(Self.dealColumns) FROM \(Self.dealFrom) WHERE d.id = $1\(lock)", binds: b), forming: true,
                connection, logger
            ).first
        else { throw LinliError.notFound("group buy deal") }
        return found
    }

    /// A merchant's application to sell `sku` in the campaign at `groupPriceFen`, below its price
    /// in the campaign's community.
    public func apply(
        campaign id: UUID, sku: UUID, groupPriceFen: Int64, merchant: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> Deal {
        let campaign = try await campaign(id, on: connection, logger: logger)
        guard !campaign.closed, campaign.endsAt > Date() else {
            throw LinliError(.failedPrecondition, "campaign_id: the campaign is over", field: "campaign_id")
        }
        guard try await MerchantStore().sells(merchant, in: campaign.community, on: connection, logger: logger) else {
            throw LinliError(.failedPrecondition, "campaign_id: your shop does not sell in the campaign's community", field: "campaign_id")
        }
        var price: Int64?
        for try await p in try await connection.run(
            """
            SELECT coalesce(cp.price_fen, s.price_fen) FROM skus s JOIN goods g ON g.id = s.goods_id
            LEFT JOIN sku_community_prices cp ON cp.sku_id = s.id AND cp.community_id = \(campaign.community.uuid)
            WHERE s.id = \(sku) AND g.merchant_id = \(merchant)
            """, logger: logger
        ).decode(Int64.self) { price = p }
        guard let price else { throw LinliError(.notFound, "sku_id: not a SKU of your shop", field: "sku_id") }
        guard groupPriceFen < price else {
            throw LinliError.invalid("group_price_fen", "must be below the SKU's price in the community (\(price) fen)")
        }
        let dealID = UUIDv7.make()
        let inserted = try await connection.run(
            """
            INSERT INTO group_buy_deals (id, campaign_id, merchant_id, sku_id, group_price_fen)
            VALUES (\(dealID), \(id), \(merchant), \(sku), \(groupPriceFen)) ON CONFLICT (campaign_id, sku_id) DO NOTHING RETURNING 1
            """, logger: logger)
        var fresh = false
        for try await _ in inserted { fresh = true }
        guard fresh else { throw LinliError(.alreadyExists, "sku_id: the SKU is already in this campaign", field: "sku_id") }
        return try await deal(dealID, on: connection, logger: logger)
    }

    public func review(_ id: UUID, approve: Bool, reason: String, by user: UserID, on connection: PostgresConnection, logger: Logger)
        async throws -> Deal
    {
        let deal = try await deal(id, forUpdate: true, on: connection, logger: logger)
        let state: MerchantStore.JoinState = approve ? .approved : .rejected
        if deal.state == state { return deal }
        guard deal.state == .requested else {
            throw LinliError(.failedPrecondition, "deal_id: the application was \(deal.state.rawValue) already", field: "deal_id")
        }
        try await connection.run(
            "UPDATE group_buy_deals SET state = \(state.rawValue), reason = \(reason), reviewed_by = \(user.uuid) WHERE id = \(id)",
            logger: logger)
        return try await self.deal(id, on: connection, logger: logger)
    }

    /// The community's campaigns and deals: for residents the approved deals of campaigns open
    /// now; for a merchant its own; for staff all.
    public func list(
        community: CommunityID, campaign: UUID?, merchant: UUID?, residentView: Bool, on connection: PostgresConnection, logger: Logger
    ) async throws -> ([Campaign], [Deal]) {
        var b = PostgresBindings()
        b.append(community.uuid)
        var where_ = "k.community_id = $1"
        if let campaign {
            b.append(campaign)
            where_ += " AND k.id = $\(b.count)"
        }
        if residentView { where_ += " AND NOT k.closed AND k.starts_at <= now() AND k.ends_at > now()" }
        let campaigns = try await campaigns(
            PostgresQuery(
                unsafeSQL: "SELECT \(Self.campaignColumns) FROM group_buy_campaigns k WHERE \(where_) ORDER BY k.ends_at DESC, k.id LIMIT 100",
                binds: b), connection, logger)
        if residentView { where_ += " AND d.state = 'approved' AND m.state = 'active'" }
        if let merchant {
            b.append(merchant)
            where_ += " AND d.merchant_id = $\(b.count)"
        }
        let deals = try await deals(
            PostgresQuery(
                unsafeSQL: "SELECT \(Self.dealColumns) FROM \(Self.dealFrom) WHERE \(where_) ORDER BY k.ends_at DESC, d.id LIMIT 500", binds: b),
            forming: true, connection, logger)
        return (campaigns, deals)
    }

    // MARK: groups

    static let groupColumns = "id, deal_id, size, joined, paid, state, deadline, created_at, closed_at"

    func groups(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Group] {
        var result: [Group] = []
        for try await r in try await connection.run(query, logger: logger).decode(
            (UUID, UUID, Int32, Int32, Int32, String, Date, Date, Date?).self)
        {
            result.append(
                Group(
                    id: r.0, deal: r.1, size: r.2, joined: r.3, paid: r.4, state: State(rawValue: r.5) ?? .forming, deadline: r.6, createdAt: r.7,
                    closedAt: r.8))
        }
        return result
    }

    public func group(_ id: UUID, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> Group {
        var b = PostgresBindings()
        b.append(id)
        let lock = forUpdate ? " FOR UPDATE" : ""
        guard
            let found = try await groups(
                PostgresQuery(unsafeSQL: "SELECT \(Self.groupColumns) FROM group_buys WHERE id = $1\(lock)", binds: b), connection, logger
            ).first
        else { throw LinliError.notFound("group buy") }
        return found
    }

    /// The group a resident joins (`group` nil: a new one, if the campaign is open), its seat
    /// taken; the member's order is placed after this, in the same transaction.
    public func seat(
        deal: Deal, group id: UUID?, resident: UUID, at time: Date = Date(), on connection: PostgresConnection, logger: Logger
    ) async throws -> Group {
        guard deal.state == .approved else { throw LinliError(.failedPrecondition, "deal_id: the deal is not approved", field: "deal_id") }
        let target: UUID
        if let id {
            target = id
        } else {
            let campaign = try await campaign(deal.campaign, on: connection, logger: logger)
            guard campaign.open(at: time) else {
                throw LinliError(.failedPrecondition, "deal_id: the campaign takes no new groups now", field: "deal_id")
            }
            target = UUIDv7.make()
            let deadline = min(time.addingTimeInterval(TimeInterval(campaign.formHours) * 3600), campaign.endsAt)
            try await connection.run(
                """
                INSERT INTO group_buys (id, deal_id, size, deadline, opened_by)
                VALUES (\(target), \(deal.id), \(campaign.groupSize), \(deadline), \(resident))
                """, logger: logger)
        }
        let group = try await group(target, forUpdate: true, on: connection, logger: logger)
        guard group.deal == deal.id else { throw LinliError(.notFound, "group_buy_id: not a group of this deal", field: "group_buy_id") }
        guard group.state == .forming, group.deadline > time else {
            throw LinliError(
                .failedPrecondition, "group_buy_id: the group is \(group.state == .forming ? "past its deadline" : group.state.rawValue)")
        }
        guard group.joined < group.size else {
            throw LinliError(.resourceExhausted, "group_buy_id: the group is full; open a new one", field: "group_buy_id")
        }
        for try await _ in try await connection.run(
            "SELECT 1 FROM orders WHERE group_buy_id = \(target) AND resident_id = \(resident) AND state <> 'cancelled'", logger: logger)
        {
            throw LinliError(.alreadyExists, "group_buy_id: you are in this group already", field: "group_buy_id")
        }
        try await connection.run("UPDATE group_buys SET joined = joined + 1 WHERE id = \(target)", logger: logger)
        return group
    }

    /// A member paid (the order row is locked): the group succeeds when every seat of its size is paid.
    func memberPaid(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE group_buys SET paid = paid + 1,
                state = CASE WHEN paid + 1 = size THEN 'succeeded' ELSE state END,
                closed_at = CASE WHEN paid + 1 = size THEN now() ELSE closed_at END
            WHERE id = \(id) AND state = 'forming'
            """, logger: logger)
    }

    /// A member's order cancelled while the group forms: the seat (and the paid count) given back.
    func memberLeft(_ id: UUID, paid: Bool, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE group_buys SET joined = joined - 1, paid = paid - \(paid ? 1 : 0) WHERE id = \(id) AND state = 'forming'
            """, logger: logger)
    }

    /// Fails the group when it is still short of its size at its deadline; the members' orders
    /// still standing (unpaid or paid), to cancel one by one.
    public func failIfDue(_ id: UUID, at time: Date, on connection: PostgresConnection, logger: Logger) async throws -> [UUID] {
        try await connection.run(
            """
            UPDATE group_buys SET state = 'failed', closed_at = now() WHERE id = \(id) AND state = 'forming' AND deadline <= \(time)
            """, logger: logger)
        var orders: [UUID] = []
        for try await order in try await connection.run(
            """
            SELECT o.id FROM orders o JOIN group_buys g ON g.id = o.group_buy_id
            WHERE g.id = \(id) AND g.state = 'failed' AND o.state IN ('unpaid', 'paid') ORDER BY o.id
            """, logger: logger
        ).decode(UUID.self) { orders.append(order) }
        return orders
    }

    /// Groups forming past their deadline, and failed groups with members still standing (a
    /// restart in the middle of failing one).
    public func due(at time: Date, on connection: PostgresConnection, logger: Logger) async throws -> [UUID] {
        var result: [UUID] = []
        for try await id in try await connection.run(
            """
            SELECT id FROM group_buys WHERE state = 'forming' AND deadline <= \(time)
            UNION
            SELECT DISTINCT g.id FROM group_buys g JOIN orders o ON o.group_buy_id = g.id
            WHERE g.state = 'failed' AND o.state IN ('unpaid', 'paid')
            LIMIT 500
            """, logger: logger
        ).decode(UUID.self) { result.append(id) }
        return result
    }
}
