import Foundation
import LinliBilling
import LinliCore
import Logging
import PostgresNIO

/// Merchants, the communities they sell in, the category tree, goods and SKUs, and the
/// marketplace settings, in the caller's tenant transaction.
public struct MerchantStore: Sendable {
    public init() {}

    public enum ShopType: String, Sendable, CaseIterable {
        case supermarket, restaurant, greengrocer, pharmacy
        case motherBaby = "mother_baby"
        case housekeeping, other
    }

    public enum State: String, Sendable, CaseIterable {
        case submitted, rejected
        case depositDue = "deposit_due"
        case active
    }

    public enum JoinState: String, Sendable, CaseIterable { case requested, approved, rejected }

    public struct Merchant: Sendable {
        public var id: UUID
        public var owner: UUID
        public var name: String
        public var shopType: ShopType
        public var licenceNo: String
        public var contactName: String
        public var contactPhone: String
        public var address: String
        public var hours: String
        public var radius: Int32
        public var logoRef: String
        public var imageRefs: [String]
        public var state: State
        public var rejectReason: String
        public var commissionBP: Int32
        public var depositFen: Int64
        public var createdAt: Date
        public var communities: [(community: CommunityID, state: JoinState, reason: String)] = []
    }

    public struct Application: Sendable {
        public var community: CommunityID
        public var name: String
        public var shopType: ShopType
        public var licenceNo: String
        public var contactName: String
        public var contactPhone: String
        public var address: String
        public var hours: String
        public var radius: Int32
        public var logoRef: String
        public var imageRefs: [String]

        public init(
            community: CommunityID, name: String, shopType: ShopType, licenceNo: String, contactName: String, contactPhone: String, address: String,
            hours: String, radius: Int32, logoRef: String, imageRefs: [String]
        ) {
            self.community = community
            self.name = name
            self.shopType = shopType
            self.licenceNo = licenceNo
            self.contactName = contactName
            self.contactPhone = contactPhone
            self.address = address
            self.hours = hours
            self.radius = radius
            self.logoRef = logoRef
            self.imageRefs = imageRefs
        }
    }

    public struct Settings: Sendable, Equatable {
        public var unpaidSeconds: Int32
        public var confirmDays: Int32
        public var reviewDays: Int32
        public var fenPerPoint: Int32
        public var maxPointsPercent: Int32
        public var defaultCommissionBP: Int32
    }

    // MARK: settings

    public func settings(on connection: PostgresConnection, logger: Logger) async throws -> Settings {
        let rows = try await connection.run(
            """
            SELECT unpaid_seconds, confirm_days, review_days, fen_per_point, max_points_percent, default_commission_bp FROM commerce_settings
            """, logger: logger)
        for try await r in rows.decode((Int32, Int32, Int32, Int32, Int32, Int32).self) {
            return Settings(
                unpaidSeconds: r.0, confirmDays: r.1, reviewDays: r.2, fenPerPoint: r.3, maxPointsPercent: r.4, defaultCommissionBP: r.5)
        }
        throw LinliError(.internal, "commerce settings missing")
    }

    public func setSettings(_ s: Settings, on connection: PostgresConnection, logger: Logger) async throws -> Settings {
        try await connection.run(
            """
            UPDATE commerce_settings SET unpaid_seconds = \(s.unpaidSeconds), confirm_days = \(s.confirmDays), review_days = \(s.reviewDays),
                fen_per_point = \(s.fenPerPoint), max_points_percent = \(s.maxPointsPercent), default_commission_bp = \(s.defaultCommissionBP)
            """, logger: logger)
        return try await settings(on: connection, logger: logger)
    }

    // MARK: merchants

    static let columns = """
        id, owner_user_id, name, shop_type, licence_no, contact_name, contact_phone, address, hours, delivery_radius_tenths_km, logo_ref,
        image_refs, state, reject_reason, commission_bp, deposit_fen, created_at
        """

    func merchants(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Merchant] {
        var result: [Merchant] = []
        for try await r in try await connection.run(query, logger: logger).decode(
            (UUID, UUID, String, String, String, String, String, String, String, Int32, String, [String], String, String, Int32, Int64, Date).self)
        {
            result.append(
                Merchant(
                    id: r.0, owner: r.1, name: r.2, shopType: ShopType(rawValue: r.3) ?? .other, licenceNo: r.4, contactName: r.5,
                    contactPhone: r.6, address: r.7, hours: r.8, radius: r.9, logoRef: r.10, imageRefs: r.11,
                    state: State(rawValue: r.12) ?? .submitted,
                    rejectReason: r.13, commissionBP: r.14, depositFen: r.15, createdAt: r.16))
        }
        guard !result.isEmpty else { return result }
        var index: [UUID: Int] = [:]
        for (i, m) in result.enumerated() { index[m.id] = i }
        for try await (merchant, community, state, reason) in try await connection.run(
            """
            SELECT merchant_id, community_id, state, reason FROM merchant_communities
            WHERE merchant_id = ANY(\(result.map(\.id))::uuid[]) ORDER BY created_at, community_id
            """, logger: logger
        ).decode((UUID, UUID, String, String).self) {
            if let i = index[merchant] { result[i].communities.append((CommunityID(community), JoinState(rawValue: state) ?? .requested, reason)) }
        }
        return result
    }

    public func merchant(_ id: UUID, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> Merchant {
        let lock = forUpdate ? " FOR UPDATE" : ""
        var b = PostgresBindings()
        b.append(id)
        guard
            let found = try await merchants(
                PostgresQuery(unsafeSQL: "SELECT \(Self.columns) FROM merchants WHERE id = $1\(lock)", binds: b), connection, logger
            ).first
        else { throw LinliError.notFound("merchant") }
        return found
    }

    /// The merchant `user` works for, if any.
    public func merchantID(of user: UserID, on connection: PostgresConnection, logger: Logger) async throws -> UUID? {
        for try await id in try await connection.run(
            "SELECT merchant_id FROM merchant_members WHERE user_id = \(user.uuid)", logger: logger
        ).decode(UUID.self) { return id }
        return nil
    }

    /// The merchant a merchant-role caller works for; `permissionDenied` when none.
    public func ownMerchant(_ principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> UUID {
        guard principal.role == .merchant, let id = try await merchantID(of: principal.subjectID, on: connection, logger: logger) else {
            throw LinliError(.permissionDenied, "merchant_id: only a merchant's own staff may do this")
        }
        return id
    }

    /// Managers may see every merchant (of their communities' applications); a merchant only
    /// their own. Returns the merchant.
    public func visible(_ id: UUID, to principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Merchant {
        let merchant = try await merchant(id, on: connection, logger: logger)
        if principal.role == .merchant {
            guard try await merchantID(of: principal.subjectID, on: connection, logger: logger) == id else { throw LinliError.notFound("merchant") }
        } else if !merchant.communities.contains(where: { principal.canAct(in: $0.community) }) {
            throw LinliError.notFound("merchant")
        }
        return merchant
    }

    // MARK: staff

    public struct Staff: Sendable {
        public var merchant: UUID
        public var user: UUID
        public var displayName: String
        public var owner: Bool
    }

    /// The shop whose owner `principal` is; `permissionDenied` for its staff and anyone else.
    func ownedMerchant(_ principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> UUID {
        let id = try await ownMerchant(principal, on: connection, logger: logger)
        for try await _ in try await connection.run(
            "SELECT 1 FROM merchants WHERE id = \(id) AND owner_user_id = \(principal.subjectID.uuid)", logger: logger)
        { return id }
        throw LinliError(.permissionDenied, "user_id: only the shop's owner manages its staff")
    }

    public func staff(of merchant: UUID, on connection: PostgresConnection, logger: Logger) async throws -> [Staff] {
        var result: [Staff] = []
        for try await r in try await connection.run(
            """
            SELECT mm.user_id, u.display_name, mm.user_id = m.owner_user_id FROM merchant_members mm
            JOIN users u ON u.id = mm.user_id JOIN merchants m ON m.id = mm.merchant_id
            WHERE mm.merchant_id = \(merchant) ORDER BY 3 DESC, u.display_name, mm.user_id
            """, logger: logger
        ).decode((UUID, String, Bool).self) { result.append(Staff(merchant: merchant, user: r.0, displayName: r.1, owner: r.2)) }
        return result
    }

    /// Adds an active merchant-role user who works for no shop to `merchant`'s staff.
    public func addStaff(_ user: UserID, to merchant: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Staff {
        var found: (String, String, String)?
        for try await r in try await connection.run(
            "SELECT role, status, display_name FROM users WHERE id = \(user.uuid)", logger: logger
        ).decode((String, String, String).self) { found = r }
        guard let (role, status, name) = found else { throw LinliError(.notFound, "user_id: no such user", field: "user_id") }
        guard role == Role.merchant.name, status == "active" else {
            throw LinliError(.failedPrecondition, "user_id: the user must be an active user with the merchant role", field: "user_id")
        }
        if let other = try await merchantID(of: user, on: connection, logger: logger) {
            if other == merchant { return Staff(merchant: merchant, user: user.uuid, displayName: name, owner: false) }
            throw LinliError(.alreadyExists, "user_id: the user works for another shop", field: "user_id")
        }
        try await connection.run(
            "INSERT INTO merchant_members (merchant_id, user_id) VALUES (\(merchant), \(user.uuid)) ON CONFLICT DO NOTHING", logger: logger)
        return Staff(merchant: merchant, user: user.uuid, displayName: name, owner: false)
    }

    public func removeStaff(_ user: UserID, from merchant: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Staff {
        guard let member = try await staff(of: merchant, on: connection, logger: logger).first(where: { $0.user == user.uuid }) else {
            throw LinliError(.notFound, "user_id: not on the shop's staff", field: "user_id")
        }
        guard !member.owner else { throw LinliError(.failedPrecondition, "user_id: the owner stays on the staff", field: "user_id") }
        try await connection.run(
            "DELETE FROM merchant_members WHERE merchant_id = \(merchant) AND user_id = \(user.uuid)", logger: logger)
        return member
    }

    public func apply(_ a: Application, by user: UserID, on connection: PostgresConnection, logger: Logger) async throws -> Merchant {
        if let existing = try await merchantID(of: user, on: connection, logger: logger) {
            throw LinliError(.alreadyExists, "merchant_id: you already have a shop (\(existing.uuidString.lowercased()))")
        }
        let id = UUIDv7.make()
        let inserted = try await connection.run(
            """
            INSERT INTO merchants (id, owner_user_id, name, shop_type, licence_no, contact_name, contact_phone, address, hours,
                                   delivery_radius_tenths_km, logo_ref, image_refs)
            VALUES (\(id), \(user.uuid), \(a.name), \(a.shopType.rawValue), \(a.licenceNo), \(a.contactName), \(a.contactPhone), \(a.address),
                    \(a.hours), \(a.radius), \(a.logoRef), \(a.imageRefs)::text[])
            ON CONFLICT (licence_no) DO NOTHING RETURNING 1
            """, logger: logger)
        var fresh = false
        for try await _ in inserted { fresh = true }
        guard fresh else { throw LinliError(.alreadyExists, "licence_no: a shop with this licence is already registered", field: "licence_no") }
        try await connection.run("INSERT INTO merchant_members (merchant_id, user_id) VALUES (\(id), \(user.uuid))", logger: logger)
        try await connection.run(
            "INSERT INTO merchant_communities (merchant_id, community_id) VALUES (\(id), \(a.community.uuid))", logger: logger)
        return try await merchant(id, on: connection, logger: logger)
    }

    /// Approves (with the commission and the deposit due) or rejects an application; the
    /// community it was made in is reviewed with it.
    public func review(
        _ id: UUID, approve: Bool, reason: String, commissionBP: Int32, depositFen: Int64, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Merchant {
        let merchant = try await merchant(id, forUpdate: true, on: connection, logger: logger)
        guard let first = merchant.communities.first, principal.canAct(in: first.community) else { throw LinliError.notFound("merchant") }
        guard merchant.state == .submitted else {
            throw LinliError(.failedPrecondition, "merchant_id: the application was already reviewed (\(merchant.state.rawValue))")
        }
        let state: State = approve ? (depositFen > 0 ? .depositDue : .active) : .rejected
        try await connection.run(
            """
            UPDATE merchants SET state = \(state.rawValue), reject_reason = \(approve ? "" : reason), commission_bp = \(commissionBP),
                deposit_fen = \(approve ? depositFen : 0), reviewed_by = \(principal.subjectID.uuid)
            WHERE id = \(id)
            """, logger: logger)
        try await connection.run(
            """
            UPDATE merchant_communities SET state = \(approve ? "approved" : "rejected"), reason = \(reason), reviewed_by = \(principal.subjectID.uuid)
            WHERE merchant_id = \(id) AND community_id = \(first.community.uuid)
            """, logger: logger)
        return try await self.merchant(id, on: connection, logger: logger)
    }

    /// The deposit due, taken on the ledger of the merchant's first community; the shop opens.
    public func collectDeposit(
        _ id: UUID, method: PaymentStore.Method, by principal: Principal, on connection: PostgresConnection, logger: Logger
    ) async throws -> Merchant {
        let merchant = try await merchant(id, forUpdate: true, on: connection, logger: logger)
        guard let first = merchant.communities.first, principal.canAct(in: first.community) else { throw LinliError.notFound("merchant") }
        guard merchant.state == .depositDue else {
            throw LinliError(.failedPrecondition, "merchant_id: no deposit is due (\(merchant.state.rawValue))")
        }
        let entry = try await CommerceLedger.merchantDeposit(
            merchant.depositFen, method: method, merchant: id, community: first.community, by: principal.subjectID, on: connection, logger: logger)
        try await connection.run("UPDATE merchants SET state = 'active', deposit_entry = \(entry) WHERE id = \(id)", logger: logger)
        return try await self.merchant(id, on: connection, logger: logger)
    }

    public func requestJoin(_ id: UUID, community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> Merchant {
        let merchant = try await merchant(id, forUpdate: true, on: connection, logger: logger)
        guard merchant.state == .active else { throw LinliError(.failedPrecondition, "merchant_id: the shop is not active yet") }
        if let known = merchant.communities.first(where: { $0.community == community }), known.state != .rejected {
            return merchant
        }
        try await connection.run(
            """
            INSERT INTO merchant_communities (merchant_id, community_id) VALUES (\(id), \(community.uuid))
            ON CONFLICT (merchant_id, community_id) DO UPDATE SET state = 'requested', reason = '', reviewed_by = NULL
            """, logger: logger)
        return try await self.merchant(id, on: connection, logger: logger)
    }

    public func reviewJoin(
        _ id: UUID, community: CommunityID, approve: Bool, reason: String, by user: UserID, on connection: PostgresConnection, logger: Logger
    ) async throws -> Merchant {
        let updated = try await connection.run(
            """
            UPDATE merchant_communities SET state = \(approve ? "approved" : "rejected"), reason = \(reason), reviewed_by = \(user.uuid)
            WHERE merchant_id = \(id) AND community_id = \(community.uuid) AND state = 'requested' RETURNING 1
            """, logger: logger)
        var changed = false
        for try await _ in updated { changed = true }
        let merchant = try await self.merchant(id, on: connection, logger: logger)
        if !changed {
            guard let known = merchant.communities.first(where: { $0.community == community }) else { throw LinliError.notFound("community request") }
            if known.state != (approve ? .approved : .rejected) {
                throw LinliError(.failedPrecondition, "community_id: the request was already \(known.state.rawValue)")
            }
        }
        return merchant
    }

    /// Managers: the merchants that applied in (or joined) their communities; a merchant: theirs.
    public func list(
        for principal: Principal, state: State?, after: (Date, UUID)?, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> [Merchant] {
        var b = PostgresBindings()
        var sql = "SELECT \(Self.columns) FROM merchants m WHERE "
        if principal.role == .merchant {
            b.append(principal.subjectID.uuid)
            sql += "id IN (SELECT merchant_id FROM merchant_members WHERE user_id = $1)"
        } else {
            b.append(principal.communityIDs.map(\.uuid))
            sql += "EXISTS (SELECT 1 FROM merchant_communities c WHERE c.merchant_id = m.id AND c.community_id = ANY($1::uuid[]))"
        }
        if let state {
            b.append(state.rawValue)
            sql += " AND state = $\(b.count)"
        }
        if let (time, id) = after {
            b.append(time)
            b.append(id)
            sql += " AND (created_at, id) < ($\(b.count - 1), $\(b.count))"
        }
        sql += " ORDER BY created_at DESC, id DESC LIMIT \(limit)"
        return try await merchants(PostgresQuery(unsafeSQL: sql, binds: b), connection, logger)
    }

    /// Whether the merchant is active and approved in `community`.
    public func sells(_ merchant: UUID, in community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.run(
            """
            SELECT 1 FROM merchants m JOIN merchant_communities c ON c.merchant_id = m.id
            WHERE m.id = \(merchant) AND m.state = 'active' AND c.community_id = \(community.uuid) AND c.state = 'approved'
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }
}
