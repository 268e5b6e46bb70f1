import Foundation
import LinliBilling
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

extension ParkingStore {
    public struct Merchant: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var name: String
        public var balanceFen: Int64
    }

    public func createMerchant(community: CommunityID, name: String, on connection: PostgresConnection, logger: Logger) async throws -> Merchant {
        let id = UUIDv7.make()
        let rows = try await connection.run(
            """
            INSERT INTO parking_merchants (id, community_id, name) VALUES (\(id), \(community.uuid), \(name))
            ON CONFLICT (community_id, name) DO NOTHING RETURNING 1
            """, logger: logger)
        var made = false
        for try await _ in rows { made = true }
        guard made else { throw LinliError(.alreadyExists, "name: the community already has a merchant of this name", field: "name") }
        return Merchant(id: id, community: community, name: name, balanceFen: 0)
    }

    public func merchant(_ id: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Merchant {
        let rows = try await connection.run("SELECT community_id, name FROM parking_merchants WHERE id = \(id)", logger: logger)
        for try await (community, name) in rows.decode((UUID, String).self) where principal.canAct(in: CommunityID(community)) {
            let balance = try await ParkingLedger.couponBalance(merchant: id, community: CommunityID(community), on: connection, logger: logger)
            return Merchant(id: id, community: CommunityID(community), name: name, balanceFen: balance)
        }
        throw LinliError.notFound("merchant")
    }

    public struct Batch: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var merchant: UUID
        public var kind: ParkingFee.Coupon.Kind
        public var value: Int64
        public var priceFen: Int64
        public var quantity: Int
        public var issued: Int
        public var validDays: Int

        public init(
            id: UUID, community: CommunityID, merchant: UUID, kind: ParkingFee.Coupon.Kind, value: Int64, priceFen: Int64, quantity: Int, issued: Int,
            validDays: Int
        ) {
            self.id = id
            self.community = community
            self.merchant = merchant
            self.kind = kind
            self.value = value
            self.priceFen = priceFen
            self.quantity = quantity
            self.issued = issued
            self.validDays = validDays
        }
    }

    public func buyCoupons(
        _ batch: Batch, method: PaymentStore.Method, by user: UserID, on connection: PostgresConnection, logger: Logger
    ) async throws -> Batch {
        let (total, overflow) = batch.priceFen.multipliedReportingOverflow(by: Int64(clamping: batch.quantity))
        guard !overflow, total <= 100_000_000 else { throw LinliError.invalid("quantity", "price_fen × quantity must be at most 1,000,000 元") }
        let entry = try await ParkingLedger.buyCoupons(
            total, method: method, merchant: batch.merchant, community: batch.community, by: user, on: connection, logger: logger)
        try await connection.run(
            """
            INSERT INTO parking_coupon_batches (id, community_id, merchant_id, kind, value, price_fen, quantity, valid_days, entry_id, created_by)
            VALUES (\(batch.id), \(batch.community.uuid), \(batch.merchant), \(batch.kind.rawValue), \(batch.value), \(batch.priceFen),
                    \(Int32(clamping: batch.quantity)), \(Int32(clamping: batch.validDays)), \(entry), \(user.uuid))
            """, logger: logger)
        return batch
    }

    public struct Coupon: Sendable {
        public var id: UUID
        public var batch: UUID
        public var plate: String
        public var kind: ParkingFee.Coupon.Kind
        public var value: Int64
        public var status: String
        public var validUntil: Date
        public var session: UUID?
        public var offFen: Int64
    }

    /// One coupon of the batch to `plate`, while the batch has coupons left.
    public func issueCoupon(batch id: UUID, plate: String, for principal: Principal, on connection: PostgresConnection, logger: Logger)
        async throws -> Coupon
    {
        let rows = try await connection.run(
            """
            SELECT community_id, kind, value, quantity, issued, valid_days FROM parking_coupon_batches WHERE id = \(id) FOR UPDATE
            """, logger: logger)
        for try await (community, kind, value, quantity, issued, days) in rows.decode((UUID, String, Int64, Int32, Int32, Int32).self) {
            guard principal.canAct(in: CommunityID(community)), let kind = ParkingFee.Coupon.Kind(rawValue: kind) else { break }
            guard issued < quantity else {
                throw LinliError(.failedPrecondition, "batch_id: all \(quantity) coupons of the batch are issued", field: "batch_id")
            }
            let coupon = UUIDv7.make()
            let made = try await connection.run(
                """
                WITH b AS (UPDATE parking_coupon_batches SET issued = issued + 1 WHERE id = \(id))
                INSERT INTO parking_coupons (id, community_id, batch_id, plate, valid_from, valid_until)
                VALUES (\(coupon), \(community), \(id), \(plate), now(), now() + make_interval(days => \(days)))
                RETURNING valid_until
                """, logger: logger)
            for try await until in made.decode(Date.self) {
                return Coupon(
                    id: coupon, batch: id, plate: plate, kind: kind, value: value, status: "unused", validUntil: until, session: nil, offFen: 0)
            }
        }
        throw LinliError.notFound("coupon batch")
    }

    public func coupons(community: CommunityID, plate: String?, on connection: PostgresConnection, logger: Logger) async throws -> [Coupon] {
        let rows = try await connection.run(
            """
            SELECT c.id, c.batch_id, c.plate, b.kind, b.value, c.status, c.valid_until, c.session_id, c.off_fen
            FROM parking_coupons c JOIN parking_coupon_batches b ON b.id = c.batch_id
            WHERE c.community_id = \(community.uuid) AND (\(plate)::text IS NULL OR c.plate = \(plate))
            ORDER BY c.id DESC LIMIT 500
            """, logger: logger)
        var result: [Coupon] = []
        for try await r in rows.decode((UUID, UUID, String, String, Int64, String, Date, UUID?, Int64).self) {
            result.append(
                Coupon(
                    id: r.0, batch: r.1, plate: r.2, kind: ParkingFee.Coupon.Kind(rawValue: r.3) ?? .money, value: r.4, status: r.5,
                    validUntil: r.6, session: r.7, offFen: r.8))
        }
        return result
    }

    public struct Report: Sendable {
        public var entries: Int
        public var exits: Int
        public var revenueFen: Int64
        public var monthlyRevenueFen: Int64
        public var byRule: [(carClass: GateDecision.CarClass, version: Int, revenueFen: Int64, sessions: Int)]
        public var averageStayMinutes: Int
    }

    /// The lot's figures over local days [from, to].
    public func report(lot: Lot, from: String, to: String, on connection: PostgresConnection, logger: Logger) async throws -> Report {
        let c = lot.community.uuid
        let rows = try await connection.run(
            """
            WITH span AS (SELECT community_day_start(\(c), \(from)::date) AS a, community_day_start(\(c), \(to)::date + 1) AS b)
            SELECT
              (SELECT count(*) FROM parking_sessions s, span WHERE s.lot_id = \(lot.id) AND s.entered_at >= span.a AND s.entered_at < span.b),
              (SELECT count(*) FROM parking_sessions s, span WHERE s.lot_id = \(lot.id) AND s.exited_at >= span.a AND s.exited_at < span.b),
              (SELECT coalesce(sum(p.amount_fen - p.refunded_fen), 0)::int8 FROM parking_payments p JOIN parking_sessions s ON s.id = p.session_id, span
                 WHERE s.lot_id = \(lot.id) AND p.created_at >= span.a AND p.created_at < span.b)
              + (SELECT coalesce(sum(b.price_fen), 0)::int8 FROM parking_coupons cp JOIN parking_coupon_batches b ON b.id = cp.batch_id
                   JOIN parking_sessions s ON s.id = cp.session_id, span
                 WHERE s.lot_id = \(lot.id) AND cp.used_at >= span.a AND cp.used_at < span.b),
              (SELECT coalesce(sum(p.amount_fen - p.refunded_fen), 0)::int8 FROM parking_payments p JOIN parking_permits pm ON pm.id = p.permit_id, span
                 WHERE pm.community_id = \(c) AND (pm.lot_id IS NULL OR pm.lot_id = \(lot.id)) AND p.created_at >= span.a AND p.created_at < span.b),
              (SELECT coalesce(avg(extract(epoch FROM s.exited_at - s.entered_at) / 60), 0)::int4 FROM parking_sessions s, span
                 WHERE s.lot_id = \(lot.id) AND s.exited_at >= span.a AND s.exited_at < span.b AND s.entered_at IS NOT NULL)
            """, logger: logger)
        var report = Report(entries: 0, exits: 0, revenueFen: 0, monthlyRevenueFen: 0, byRule: [], averageStayMinutes: 0)
        for try await (entries, exits, temp, monthly, stay) in rows.decode((Int64, Int64, Int64, Int64, Int32).self) {
            report = Report(
                entries: Int(clamping: entries), exits: Int(clamping: exits), revenueFen: temp + monthly, monthlyRevenueFen: monthly, byRule: [],
                averageStayMinutes: Int(clamping: stay))
        }
        let lines = try await connection.run(
            """
            WITH span AS (SELECT community_day_start(\(c), \(from)::date) AS a, community_day_start(\(c), \(to)::date + 1) AS b)
            SELECT s.car_class, coalesce(r.version, 0),
                   (coalesce(sum(s.paid_fen), 0)
                    - coalesce(sum((SELECT sum(p.refunded_fen) FROM parking_payments p WHERE p.session_id = s.id)), 0)
                    + coalesce(sum((SELECT sum(b.price_fen) FROM parking_coupons cp JOIN parking_coupon_batches b ON b.id = cp.batch_id
                                    WHERE cp.session_id = s.id)), 0))::int8,
                   count(*)::int4
            FROM parking_sessions s LEFT JOIN parking_fee_rules r ON r.id = s.rule_id, span
            WHERE s.lot_id = \(lot.id) AND s.exited_at >= span.a AND s.exited_at < span.b
            GROUP BY 1, 2 ORDER BY 1, 2
            """, logger: logger)
        for try await (carClass, version, fen, count) in lines.decode((String, Int32, Int64, Int32).self) {
            report.byRule.append((GateDecision.CarClass(rawValue: carClass) ?? .temp, Int(clamping: version), fen, Int(clamping: count)))
        }
        return report
    }
}
