import Foundation
import LinliBilling
import LinliCore
import Logging
import PostgresNIO

/// Coupon templates and the coupons residents claim from them, in the caller's transaction.
/// Claims take the template row's lock, so the stock and the per-person limit hold under
/// concurrency; a coupon moves from available to used by compare-and-set, once.
public struct CouponStore: Sendable {
    public init() {}

    public enum Kind: String, Sendable, CaseIterable {
        case amountOff = "amount_off"
        case percentOff = "percent_off"
    }

    public enum Scope: String, Sendable, CaseIterable {
        case shop, category, goods
        /// Fees at the cashier and parking stays: issued by the property, never on an order.
        case propertyFees = "property_fees", parking

        var use: CouponUse? {
            switch self {
            case .shop, .category, .goods: nil
            case .propertyFees: .propertyFees
            case .parking: .parking
            }
        }
    }
    public enum State: String, Sendable, CaseIterable { case available, used, expired }

    public struct Template: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var merchant: UUID?
        public var name: String
        public var kind: Kind
        public var amountOffFen: Int64
        public var percentOff: Int32
        public var capFen: Int64
        public var thresholdFen: Int64
        public var scope: Scope
        public var scopeIDs: [UUID]
        public var stock: Int32
        public var claimed: Int32
        public var perPerson: Int32
        public var claimFrom: Date
        public var claimUntil: Date
        public var validDays: Int32

        public init(
            id: UUID, community: CommunityID, merchant: UUID?, name: String, kind: Kind, amountOffFen: Int64, percentOff: Int32, capFen: Int64,
            thresholdFen: Int64, scope: Scope, scopeIDs: [UUID], stock: Int32, claimed: Int32, perPerson: Int32, claimFrom: Date,
            claimUntil: Date, validDays: Int32
        ) {
            self.id = id
            self.community = community
            self.merchant = merchant
            self.name = name
            self.kind = kind
            self.amountOffFen = amountOffFen
            self.percentOff = percentOff
            self.capFen = capFen
            self.thresholdFen = thresholdFen
            self.scope = scope
            self.scopeIDs = scopeIDs
            self.stock = stock
            self.claimed = claimed
            self.perPerson = perPerson
            self.claimFrom = claimFrom
            self.claimUntil = claimUntil
            self.validDays = validDays
        }

        /// What the coupon takes off an order of `merchant` whose lines are `lines` (goods,
        /// category, its parent, amount): nil when the coupon does not apply (another shop, no
        /// line in scope, below the threshold). Never more than the lines in scope.
        public func discount(merchant orderMerchant: UUID, lines: [(goods: UUID, category: UUID, parent: UUID?, amountFen: Int64)]) -> Int64? {
            if let merchant, merchant != orderMerchant { return nil }
            let inScope = lines.filter { line in
                switch scope {
                case .shop: true
                case .category: scopeIDs.contains(line.category) || line.parent.map(scopeIDs.contains) == true
                case .goods: scopeIDs.contains(line.goods)
                case .propertyFees, .parking: false
                }
            }.reduce(Int64(0)) { $0 + $1.amountFen }
            return value(on: inScope)
        }

        /// What the coupon takes off `inScopeFen` (nil below the threshold or on nothing): the
        /// amount or the percent (capped), never more than `inScopeFen`.
        public func value(on inScopeFen: Int64) -> Int64? {
            guard inScopeFen > 0, inScopeFen >= thresholdFen else { return nil }
            let off: Int64
            switch kind {
            case .amountOff: off = amountOffFen
            case .percentOff:
                let raw = inScopeFen * Int64(percentOff) / 100
                off = capFen > 0 ? min(raw, capFen) : raw
            }
            return min(off, inScopeFen)
        }
    }

    public struct Coupon: Sendable {
        public var id: UUID
        public var template: Template
        public var resident: UUID
        public var stored: String
        public var claimedAt: Date
        public var expiresAt: Date
        public var order: UUID?
        public var discountFen: Int64
        /// The fee or parking payment it was spent on.
        public var payment: UUID?

        public func state(at time: Date = Date()) -> State {
            stored == "used" ? .used : (expiresAt <= time ? .expired : .available)
        }
    }

    static let templateColumns = """
        t.id, t.community_id, t.merchant_id, t.name, t.kind, t.amount_off_fen, t.percent_off, t.cap_fen, t.threshold_fen, t.scope, t.scope_ids,
        t.stock, t.claimed, t.per_person, t.claim_from, t.claim_until, t.valid_days
        """

    static func template(_ c: inout PostgresRandomAccessRow, from i: Int) throws -> Template {
        func v<T: PostgresDecodable>(_ k: Int, _: T.Type = T.self) throws -> T { try c[i + k].decode(T.self, context: .default) }
        return Template(
            id: try v(0), community: CommunityID(try v(1, UUID.self)), merchant: try v(2), name: try v(3),
            kind: Kind(rawValue: try v(4, String.self)) ?? .amountOff, amountOffFen: try v(5), percentOff: try v(6), capFen: try v(7),
            thresholdFen: try v(8), scope: Scope(rawValue: try v(9, String.self)) ?? .shop, scopeIDs: try v(10), stock: try v(11),
            claimed: try v(12), perPerson: try v(13), claimFrom: try v(14), claimUntil: try v(15), validDays: try v(16))
    }

    func templates(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Template] {
        var result: [Template] = []
        for try await row in try await connection.run(query, logger: logger) {
            var c = row.makeRandomAccess()
            result.append(try Self.template(&c, from: 0))
        }
        return result
    }

    func coupons(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Coupon] {
        var result: [Coupon] = []
        for try await row in try await connection.run(query, logger: logger) {
            var c = row.makeRandomAccess()
            let template = try Self.template(&c, from: 8)
            result.append(
                Coupon(
                    id: try c[0].decode(UUID.self, context: .default), template: template, resident: try c[1].decode(UUID.self, context: .default),
                    stored: try c[2].decode(String.self, context: .default), claimedAt: try c[3].decode(Date.self, context: .default),
                    expiresAt: try c[4].decode(Date.self, context: .default), order: try c[5].decode(UUID?.self, context: .default),
                    discountFen: try c[6].decode(Int64.self, context: .default), payment: try c[7].decode(UUID?.self, context: .default)))
        }
        return result
    }

    static let couponSelect = """
        SELECT k.id, k.resident_id, k.state, k.claimed_at, k.expires_at, k.order_id, k.discount_fen, k.payment_id, \(templateColumns)
        FROM coupons k JOIN coupon_templates t ON t.id = k.template_id
        """

    public func create(_ t: Template, by user: UserID, on connection: PostgresConnection, logger: Logger) async throws -> Template {
        switch t.scope {
        case .shop, .propertyFees, .parking:
            break
        case .category:
            for try await count in try await connection.run(
                "SELECT count(*)::int8 FROM categories WHERE id = ANY(\(t.scopeIDs)::uuid[])", logger: logger
            ).decode(Int64.self) where count != Int64(Set(t.scopeIDs).count) {
                throw LinliError(.notFound, "template.scope_ids: no such category", field: "template.scope_ids")
            }
        case .goods:
            for try await count in try await connection.run(
                """
                SELECT count(*)::int8 FROM goods WHERE id = ANY(\(t.scopeIDs)::uuid[]) AND (\(t.merchant)::uuid IS NULL OR merchant_id = \(t.merchant))
                """, logger: logger
            ).decode(Int64.self) where count != Int64(Set(t.scopeIDs).count) {
                throw LinliError(.notFound, "template.scope_ids: no such goods of the shop", field: "template.scope_ids")
            }
        }
        try await connection.run(
            """
            INSERT INTO coupon_templates (id, community_id, merchant_id, name, kind, amount_off_fen, percent_off, cap_fen, threshold_fen, scope,
                                          scope_ids, stock, per_person, claim_from, claim_until, valid_days, created_by)
            VALUES (\(t.id), \(t.community.uuid), \(t.merchant), \(t.name), \(t.kind.rawValue), \(t.amountOffFen), \(t.percentOff), \(t.capFen),
                    \(t.thresholdFen), \(t.scope.rawValue), \(t.scopeIDs)::uuid[], \(t.stock), \(t.perPerson), \(t.claimFrom), \(t.claimUntil),
                    \(t.validDays), \(user.uuid))
            """, logger: logger)
        return t
    }

    /// Templates of the community: claimable now (for residents), or the merchant's own, or all.
    public func templates(
        community: CommunityID, merchant: UUID?, claimableAt time: Date?, on connection: PostgresConnection, logger: Logger
    ) async throws -> [Template] {
        try await templates(
            """
            SELECT \(unescaped: Self.templateColumns) FROM coupon_templates t
            WHERE t.community_id = \(community.uuid) AND (\(merchant)::uuid IS NULL OR t.merchant_id = \(merchant))
              AND (\(time)::timestamptz IS NULL OR (t.claim_from <= \(time) AND t.claim_until > \(time) AND t.claimed < t.stock))
            ORDER BY t.created_at DESC, t.id DESC LIMIT 200
            """, connection, logger)
    }

    /// A coupon from the template for `resident`: within the claim window, the stock and the
    /// per-person limit.
    public func claim(_ template: UUID, resident: UUID, community: CommunityID, on connection: PostgresConnection, logger: Logger)
        async throws -> Coupon
    {
        guard
            let t = try await templates(
                "SELECT \(unescaped: Self.templateColumns) FROM coupon_templates t WHERE t.id = \(template) FOR UPDATE", connection, logger
            ).first, t.community == community
        else { throw LinliError.notFound("coupon template") }
        let now = Date()
        guard t.claimFrom <= now, now < t.claimUntil else {
            throw LinliError(.failedPrecondition, "template_id: coupons of this template are not given out now", field: "template_id")
        }
        var held: Int64 = 0
        for try await count in try await connection.run(
            "SELECT count(*)::int8 FROM coupons WHERE template_id = \(template) AND resident_id = \(resident)", logger: logger
        ).decode(Int64.self) { held = count }
        guard held < Int64(t.perPerson) else {
            throw LinliError(.failedPrecondition, "template_id: at most \(t.perPerson) per person", field: "template_id")
        }
        let taken = try await connection.run(
            "UPDATE coupon_templates SET claimed = claimed + 1 WHERE id = \(template) AND claimed < stock RETURNING 1", logger: logger)
        var ok = false
        for try await _ in taken { ok = true }
        guard ok else { throw LinliError(.resourceExhausted, "template_id: all coupons of this template are given out", field: "template_id") }
        let id = UUIDv7.make()
        try await connection.run(
            """
            INSERT INTO coupons (id, template_id, resident_id, expires_at)
            VALUES (\(id), \(template), \(resident), now() + make_interval(days => \(t.validDays)))
            """, logger: logger)
        return try await coupons("\(unescaped: Self.couponSelect) WHERE k.id = \(id)", connection, logger)[0]
    }

    public func mine(_ resident: UUID, state: State?, on connection: PostgresConnection, logger: Logger) async throws -> [Coupon] {
        let all = try await coupons(
            "\(unescaped: Self.couponSelect) WHERE k.resident_id = \(resident) ORDER BY k.claimed_at DESC, k.id DESC LIMIT 200", connection, logger)
        guard let state else { return all }
        return all.filter { $0.state() == state }
    }

    /// The resident's coupon, locked for redemption when `lock`.
    public func coupon(_ id: UUID, of resident: UUID, lock: Bool, on connection: PostgresConnection, logger: Logger) async throws -> Coupon {
        let suffix = lock ? " FOR UPDATE OF k" : ""
        guard
            let found = try await coupons(
                "\(unescaped: Self.couponSelect) WHERE k.id = \(id) AND k.resident_id = \(resident)\(unescaped: suffix)", connection, logger
            ).first
        else { throw LinliError(.notFound, "coupon_id: no such coupon of yours", field: "coupon_id") }
        return found
    }

    /// Marks the coupon used by `order` (compare-and-set: once).
    func use(_ coupon: UUID, order: UUID, discountFen: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.run(
            """
            UPDATE coupons SET state = 'used', order_id = \(order), discount_fen = \(discountFen), used_at = now()
            WHERE id = \(coupon) AND state = 'available' AND expires_at > now() RETURNING 1
            """, logger: logger)
        for try await _ in rows { return }
        throw LinliError(.failedPrecondition, "coupon_id: the coupon is used or expired", field: "coupon_id")
    }

    /// The order's coupon given back (the order was cancelled or refunded); an expired one stays
    /// expired.
    func giveBack(order: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE coupons SET state = 'available', order_id = NULL, discount_fen = 0, used_at = NULL WHERE order_id = \(order) AND state = 'used'
            """, logger: logger)
    }
}

/// Fee and parking coupons for billing and parking (which sit below commerce).
extension CouponStore: FeeCoupons {
    public func use(of coupon: UUID, community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> CouponUse {
        let rows = try await connection.run(
            "SELECT t.community_id, t.scope FROM coupons k JOIN coupon_templates t ON t.id = k.template_id WHERE k.id = \(coupon)",
            logger: logger)
        for try await (owner, raw) in rows.decode((UUID, String).self) where owner == community.uuid {
            guard let use = Scope(rawValue: raw)?.use else {
                throw LinliError(.failedPrecondition, "coupon_id: the coupon is for goods, not fees or parking", field: "coupon_id")
            }
            return use
        }
        throw LinliError(.notFound, "coupon_id: no such coupon", field: "coupon_id")
    }

    public func redeem(
        _ coupon: UUID, for use: CouponUse, community: CommunityID, inScopeFen: Int64, payment: UUID, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (fen: Int64, resident: ResidentID) {
        guard
            let found = try await coupons("\(unescaped: Self.couponSelect) WHERE k.id = \(coupon) FOR UPDATE OF k", connection, logger).first,
            found.template.community == community
        else { throw LinliError(.notFound, "coupon_id: no such coupon", field: "coupon_id") }
        guard found.template.scope.use == use else {
            throw LinliError(.failedPrecondition, "coupon_id: the coupon is not for this payment", field: "coupon_id")
        }
        guard found.state() == .available else {
            throw LinliError(.failedPrecondition, "coupon_id: the coupon is \(found.state().rawValue)", field: "coupon_id")
        }
        guard let fen = found.template.value(on: inScopeFen) else {
            throw LinliError(
                .failedPrecondition, "coupon_id: the coupon needs at least \(found.template.thresholdFen) fen in its scope; \(inScopeFen) is due",
                field: "coupon_id")
        }
        let rows = try await connection.run(
            """
            UPDATE coupons SET state = 'used', payment_id = \(payment), discount_fen = \(fen), used_at = now()
            WHERE id = \(coupon) AND state = 'available' AND expires_at > now() RETURNING 1
            """, logger: logger)
        for try await _ in rows { return (fen, ResidentID(found.resident)) }
        throw LinliError(.failedPrecondition, "coupon_id: the coupon is used or expired", field: "coupon_id")
    }

    public func giveBack(payment: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE coupons SET state = 'available', payment_id = NULL, discount_fen = 0, used_at = NULL
            WHERE payment_id = \(payment) AND state = 'used'
            """, logger: logger)
    }
}
