import Foundation
import LinliCore
import Logging
import PostgresNIO

/// What the gate decision reads about one car in one lot at one time, loaded in the deciding
/// transaction; the open session and the coupons are locked until it commits.
struct ParkingFacts {
    struct Permit {
        var id: UUID
        var kind: GateDecision.Permit.Kind
        var space: UUID?
        var decision: GateDecision.Permit
    }

    struct OpenSession {
        var id: UUID
        var enteredAt: Date
        var decision: GateDecision.Session
    }

    struct Rule {
        var id: UUID
        var version: Int
        var rule: ParkingFeeRule
    }

    struct Coupon {
        var id: UUID
        var fee: ParkingFee.Coupon
    }

    var blacklisted = false
    var whitelisted = false
    var permit: Permit?
    var reservation: (id: UUID, kind: ParkingStore.Reservation.Kind, space: UUID?)?
    var visitor: UUID?
    var session: OpenSession?
    var rule: Rule?
    var coupons: [Coupon] = []

    static func load(
        plate: String, lot: UUID, community: CommunityID, at time: Date, direction: GateDecision.Direction, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> ParkingFacts {
        var facts = ParkingFacts()
        // The lists, the permit that serves best (one valid now first, then the latest to
        // expire; a mother space's other car inside makes its space taken), the reservation
        // whose window is nearest (entry only; locked, so that two entries use it once) and a
        // visitor registration: one round trip.
        let entry = direction == .entry
        let early = time.addingTimeInterval(ParkingStore.reservationEarlySeconds)
        let rows = try await connection.run(
            """
            SELECT
              EXISTS (SELECT 1 FROM parking_lists WHERE community_id = \(community.uuid) AND plate = \(plate) AND list = 'black'
                        AND removed_at IS NULL AND (lot_id IS NULL OR lot_id = \(lot))
                        AND valid_from <= \(time) AND (valid_until IS NULL OR valid_until > \(time))),
              EXISTS (SELECT 1 FROM parking_lists WHERE community_id = \(community.uuid) AND plate = \(plate) AND list = 'white'
                        AND removed_at IS NULL AND (lot_id IS NULL OR lot_id = \(lot))
                        AND valid_from <= \(time) AND (valid_until IS NULL OR valid_until > \(time))),
              p.id, p.kind, p.space_id, p.valid_from, p.valid_until, coalesce(p.taken, false),
              r.id, r.kind, r.space_id, v.id
            FROM (SELECT 1) AS one
            LEFT JOIN LATERAL (
              SELECT p.id, p.kind, p.space_id, p.valid_from, p.valid_until,
                     EXISTS (SELECT 1 FROM parking_sessions s JOIN parking_spaces sp ON sp.id = s.space_id
                             WHERE s.space_id = p.space_id AND sp.one_car_inside AND s.exited_at IS NULL AND s.plate <> p.plate) AS taken
              FROM parking_permits p
              WHERE p.community_id = \(community.uuid) AND p.plate = \(plate) AND p.revoked_at IS NULL AND (p.lot_id IS NULL OR p.lot_id = \(lot))
                AND p.valid_from <= \(time)
              ORDER BY (p.valid_until IS NULL OR p.valid_until > \(time)) DESC, p.valid_until DESC NULLS FIRST
              LIMIT 1
            ) p ON true
            LEFT JOIN LATERAL (
              SELECT id, kind, space_id FROM parking_reservations
              WHERE \(entry) AND lot_id = \(lot) AND plate = \(plate) AND cancelled_at IS NULL AND used_at IS NULL
                AND starts_at <= \(early) AND ends_at > \(time)
              ORDER BY starts_at LIMIT 1
              FOR UPDATE
            ) r ON true
            LEFT JOIN LATERAL (
              SELECT id FROM parking_visitor_cars
              WHERE community_id = \(community.uuid) AND plate = \(plate) AND lot_id = \(lot) AND cancelled_at IS NULL
                AND valid_from <= \(time) AND valid_until > \(time)
              LIMIT 1
            ) v ON true
            """, logger: logger)
        for try await row in rows.decode((Bool, Bool, UUID?, String?, UUID?, Date?, Date?, Bool, UUID?, String?, UUID?, UUID?).self) {
            facts.blacklisted = row.0
            facts.whitelisted = row.1
            if let id = row.2, let from = row.5 {
                let kind = GateDecision.Permit.Kind(rawValue: row.3 ?? "") ?? .monthly
                facts.permit = Permit(
                    id: id, kind: kind, space: row.4,
                    decision: GateDecision.Permit(kind: kind, validFrom: from, validUntil: row.6, spaceTaken: row.7))
            }
            if let id = row.8 { facts.reservation = (id, ParkingStore.Reservation.Kind(rawValue: row.9 ?? "") ?? .nonVisitor, row.10) }
            facts.visitor = row.11
        }
        let sessions = try await connection.run(
            """
            SELECT id, car_class, free_minutes, entered_at, paid_fen, coupon_off_fen, paid_at
            FROM parking_sessions WHERE lot_id = \(lot) AND plate = \(plate) AND exited_at IS NULL
            FOR UPDATE
            """, logger: logger)
        for try await (id, carClass, free, entered, paid, off, paidAt) in sessions.decode((UUID, String, Int32, Date, Int64, Int64, Date?).self) {
            facts.session = OpenSession(
                id: id, enteredAt: entered,
                decision: GateDecision.Session(
                    enteredAt: entered, carClass: GateDecision.CarClass(rawValue: carClass) ?? .temp, freeMinutes: Int(clamping: free), paidFen: paid,
                    couponOffFen: off, paidAt: paidAt))
        }
        facts.rule = try await rule(lot: lot, on: connection, logger: logger)
        if direction == .exit, facts.session != nil {
            facts.coupons = try await coupons(plate: plate, community: community, at: time, on: connection, logger: logger)
        }
        return facts
    }

    /// The lot's current fee rule version.
    static func rule(lot: UUID, version: Int? = nil, on connection: PostgresConnection, logger: Logger) async throws -> Rule? {
        let rows = try await connection.run(
            """
            SELECT id, version, spec::text FROM parking_fee_rules
            WHERE lot_id = \(lot) AND (\(version.map { Int32(clamping: $0) })::int4 IS NULL OR version = \(version.map { Int32(clamping: $0) })::int4)
            ORDER BY version DESC LIMIT 1
            """, logger: logger)
        for try await (id, version, spec) in rows.decode((UUID, Int32, String).self) {
            guard let rule = try? JSONDecoder().decode(ParkingFeeRule.self, from: Data(spec.utf8)) else { continue }
            return Rule(id: id, version: Int(clamping: version), rule: rule)
        }
        return nil
    }

    /// The plate's unused coupons valid at `time`, locked, soonest-expiring first.
    static func coupons(plate: String, community: CommunityID, at time: Date, on connection: PostgresConnection, logger: Logger)
        async throws -> [Coupon]
    {
        let rows = try await connection.run(
            """
            SELECT c.id, b.kind, b.value FROM parking_coupons c JOIN parking_coupon_batches b ON b.id = c.batch_id
            WHERE c.community_id = \(community.uuid) AND c.plate = \(plate) AND c.status = 'unused'
              AND c.valid_from <= \(time) AND c.valid_until > \(time)
            ORDER BY c.valid_until, c.id
            FOR UPDATE OF c
            """, logger: logger)
        var result: [Coupon] = []
        for try await (id, kind, value) in rows.decode((UUID, String, Int64).self) {
            guard let kind = ParkingFee.Coupon.Kind(rawValue: kind) else { continue }
            result.append(Coupon(id: id, fee: ParkingFee.Coupon(id: id, kind: kind, value: value)))
        }
        return result
    }
}
