import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Earning rules and earning events: what a fee paid, an order done, an activity or content
/// earns, granted from the budget once per operation key, in the caller's transaction.
public struct PointsEarning: Sendable {
    public init() {}

    public enum Kind: String, Sendable, CaseIterable {
        case feePaid = "fee_paid"
        case orderDone = "order_done"
        case activity, content

        /// Whether the rule earns per fen (otherwise a fixed number each time).
        public var perAmount: Bool { self == .feePaid || self == .orderDone }
    }

    public enum Rounding: String, Sendable, CaseIterable { case down, up, nearest }
    public enum Outcome: String, Sendable, CaseIterable {
        case granted
        case noRule = "no_rule"
        case budgetExhausted = "budget_exhausted"
    }

    public struct Rule: Sendable, Equatable {
        public var id: UUID
        public var community: CommunityID
        public var kind: Kind
        public var name: String
        public var points: Int64
        public var perFen: Int64
        public var rounding: Rounding
        public var minFen: Int64
        public var capPoints: Int64
        public var startsAt: Date
        public var endsAt: Date?
        public var enabled: Bool
        public var lifetimeDays: Int32

        public init(
            id: UUID, community: CommunityID, kind: Kind, name: String, points: Int64, perFen: Int64, rounding: Rounding, minFen: Int64,
            capPoints: Int64, startsAt: Date, endsAt: Date?, enabled: Bool, lifetimeDays: Int32
        ) {
            self.id = id
            self.community = community
            self.kind = kind
            self.name = name
            self.points = points
            self.perFen = perFen
            self.rounding = rounding
            self.minFen = minFen
            self.capPoints = capPoints
            self.startsAt = startsAt
            self.endsAt = endsAt
            self.enabled = enabled
            self.lifetimeDays = lifetimeDays
        }

        /// The points `amountFen` earns: below the threshold none; per fen `points / perFen`,
        /// rounded as the rule says; a fixed number for the other kinds; never above the cap nor
        /// above what one grant may move.
        public func earns(_ amountFen: Int64) -> Int64 {
            guard amountFen >= minFen else { return 0 }
            var earned = points
            if kind.perAmount {
                guard amountFen > 0, perFen > 0 else { return 0 }
                let (product, overflow) = amountFen.multipliedReportingOverflow(by: points)
                if overflow {
                    earned = PointsEarning.maxPerEvent
                } else {
                    let (quotient, remainder) = product.quotientAndRemainder(dividingBy: perFen)
                    switch rounding {
                    case .down: earned = quotient
                    case .up: earned = quotient + (remainder > 0 ? 1 : 0)
                    case .nearest: earned = quotient + (remainder * 2 >= perFen ? 1 : 0)
                    }
                }
            }
            if capPoints > 0 { earned = min(earned, capPoints) }
            return min(earned, PointsEarning.maxPerEvent)
        }

        public func holds(at time: Date) -> Bool { enabled && startsAt <= time && endsAt.map { time < $0 } ?? true }
    }

    /// What one event may earn at most (as one grant may move).
    public static let maxPerEvent: Int64 = 1_000_000

    /// The points ledger's view of a system actor (a job, a consumer, another module acting on a
    /// resident it has already checked).
    public static func system(_ user: UserID? = nil) -> Principal {
        Principal(
            tenantID: nil, subjectID: user ?? UserID(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))), displayName: "积分规则",
            role: .operator, communityIDs: [], buildingIDs: [])
    }

    static let columns = """
        id, community_id, kind, name, points, per_fen, rounding, min_fen, cap_points, starts_at, ends_at, enabled, lifetime_days
        """

    func rules(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Rule] {
        var result: [Rule] = []
        for try await r in try await connection.run(query, logger: logger).decode(
            (UUID, UUID, String, String, Int64, Int64, String, Int64, Int64, Date, Date?, Bool, Int32).self)
        {
            result.append(
                Rule(
                    id: r.0, community: CommunityID(r.1), kind: Kind(rawValue: r.2) ?? .activity, name: r.3, points: r.4, perFen: r.5,
                    rounding: Rounding(rawValue: r.6) ?? .down, minFen: r.7, capPoints: r.8, startsAt: r.9, endsAt: r.10, enabled: r.11,
                    lifetimeDays: r.12))
        }
        return result
    }

    /// Creates the rule (its id new) or changes it (the same id, the same community).
    public func save(_ rule: Rule, new: Bool, on connection: PostgresConnection, logger: Logger) async throws -> Rule {
        let saved: PostgresRowSequence
        if new {
            saved = try await connection.run(
                """
                INSERT INTO points_rules (id, community_id, kind, name, points, per_fen, rounding, min_fen, cap_points, starts_at, ends_at,
                                          enabled, lifetime_days)
                VALUES (\(rule.id), \(rule.community.uuid), \(rule.kind.rawValue), \(rule.name), \(rule.points), \(rule.perFen),
                        \(rule.rounding.rawValue), \(rule.minFen), \(rule.capPoints), \(rule.startsAt), \(rule.endsAt), \(rule.enabled),
                        \(rule.lifetimeDays))
                RETURNING id
                """, logger: logger)
        } else {
            saved = try await connection.run(
                """
                UPDATE points_rules SET name = \(rule.name), points = \(rule.points), per_fen = \(rule.perFen), rounding = \(rule.rounding.rawValue),
                    min_fen = \(rule.minFen), cap_points = \(rule.capPoints), starts_at = \(rule.startsAt), ends_at = \(rule.endsAt),
                    enabled = \(rule.enabled), lifetime_days = \(rule.lifetimeDays)
                WHERE id = \(rule.id) AND community_id = \(rule.community.uuid) AND kind = \(rule.kind.rawValue)
                RETURNING id
                """, logger: logger)
        }
        for try await _ in saved { return rule }
        throw LinliError.notFound("earning rule")
    }

    public func rules(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> [Rule] {
        try await rules(
            "SELECT \(unescaped: Self.columns) FROM points_rules WHERE community_id = \(community.uuid) ORDER BY kind, created_at DESC, id DESC",
            connection, logger)
    }

    /// The rule of `kind` in force at `time`: the newest enabled one whose window holds it.
    public func rule(_ kind: Kind, community: CommunityID, at time: Date, on connection: PostgresConnection, logger: Logger) async throws
        -> Rule?
    {
        try await rules(
            """
            SELECT \(unescaped: Self.columns) FROM points_rules
            WHERE community_id = \(community.uuid) AND kind = \(kind.rawValue) AND enabled AND starts_at <= \(time)
              AND (ends_at IS NULL OR ends_at > \(time))
            ORDER BY created_at DESC, id DESC LIMIT 1
            """, connection, logger
        ).first
    }

    public struct Earned: Sendable, Equatable {
        public var outcome: Outcome
        public var points: Int64
        public var rule: UUID?
    }

    /// Applies the rule of `kind` in force at `time` to `amountFen` for `resident`, once per
    /// `key`: the same key again answers the first result. A budget too small for it records
    /// `budgetExhausted` and grants nothing, leaving the caller's transaction intact.
    public func earn(
        _ kind: Kind, community: CommunityID, resident: UUID, amountFen: Int64, reason: String, key: String, at time: Date = Date(),
        by user: UserID? = nil, on connection: PostgresConnection, logger: Logger
    ) async throws -> Earned {
        for try await (outcome, points, rule) in try await connection.run(
            "SELECT outcome, points, rule_id FROM points_earnings WHERE community_id = \(community.uuid) AND operation_key = \(key)",
            logger: logger
        ).decode((String, Int64, UUID?).self) {
            return Earned(outcome: Outcome(rawValue: outcome) ?? .noRule, points: points, rule: rule)
        }
        var earned = Earned(outcome: .noRule, points: 0, rule: nil)
        if let rule = try await rule(kind, community: community, at: time, on: connection, logger: logger) {
            earned.rule = rule.id
            let points = rule.earns(amountFen)
            if points > 0 {
                let lifetime = TimeInterval(rule.lifetimeDays > 0 ? rule.lifetimeDays : 365) * 86_400
                try await connection.run("SAVEPOINT points_earning", logger: logger)
                do {
                    _ = try await PointsStore().grant(
                        points, to: resident, reason: reason.isEmpty ? rule.name : reason, expiresAt: Date().addingTimeInterval(lifetime),
                        key: key, for: Self.system(user), on: connection, logger: logger)
                    try await connection.run("RELEASE SAVEPOINT points_earning", logger: logger)
                    earned.outcome = .granted
                    earned.points = points
                } catch let error as LinliError where error.code == .resourceExhausted {
                    try await connection.run("ROLLBACK TO SAVEPOINT points_earning", logger: logger)
                    earned.outcome = .budgetExhausted
                    earned.points = points
                }
            }
        }
        try await connection.run(
            """
            INSERT INTO points_earnings (community_id, operation_key, kind, rule_id, resident_id, amount_fen, points, outcome)
            VALUES (\(community.uuid), \(key), \(kind.rawValue), \(earned.rule), \(resident), \(amountFen), \(earned.points), \(earned.outcome.rawValue))
            """, logger: logger)
        return earned
    }

    /// One event that may earn points (`earn`'s arguments).
    public struct Event: Sendable {
        public var kind: Kind
        public var community: CommunityID
        public var resident: UUID
        public var amountFen: Int64
        public var reason: String
        public var key: String
        public var at: Date

        public init(kind: Kind, community: CommunityID, resident: UUID, amountFen: Int64, reason: String, key: String, at: Date) {
            self.kind = kind
            self.community = community
            self.resident = resident
            self.amountFen = amountFen
            self.reason = reason
            self.key = key
            self.at = at
        }
    }

    /// `earn` for many events at once, with the same answers: earlier results by key, the rules
    /// read once per community, each community's grants made together (`grantMany`) and the
    /// results written together. A community whose budget cannot cover its grants together is
    /// earned one event at a time, so that those the budget covers still go through (C-3).
    public func earnMany(_ events: [Event], by user: UserID? = nil, on connection: PostgresConnection, logger: Logger) async throws -> [Earned] {
        var results: [Earned?] = Array(repeating: nil, count: events.count)
        var seen: Set<String> = []
        var duplicates = false
        for e in events where !seen.insert("\(e.community) \(e.key)").inserted { duplicates = true }
        guard !duplicates else {
            var earned: [Earned] = []
            for e in events {
                earned.append(
                    try await earn(
                        e.kind, community: e.community, resident: e.resident, amountFen: e.amountFen, reason: e.reason, key: e.key, at: e.at,
                        by: user, on: connection, logger: logger))
            }
            return earned
        }
        var index: [String: Int] = [:]
        var answered: Set<Int> = []
        for (i, e) in events.enumerated() { index["\(e.community) \(e.key)"] = i }
        for try await (community, key, outcome, points, rule) in try await connection.run(
            """
            SELECT e.community_id, e.operation_key, e.outcome, e.points, e.rule_id FROM points_earnings e
            JOIN unnest(\(events.map(\.community.uuid))::uuid[], \(events.map(\.key))::text[]) AS k (community, key)
              ON e.community_id = k.community AND e.operation_key = k.key
            """, logger: logger
        ).decode((UUID, String, String, Int64, UUID?).self) {
            if let i = index["\(CommunityID(community)) \(key)"] {
                results[i] = Earned(outcome: Outcome(rawValue: outcome) ?? .noRule, points: points, rule: rule)
                answered.insert(i)
            }
        }
        var rulesOf: [CommunityID: [Rule]] = [:]
        var grants: [CommunityID: [(Int, PointsStore.GrantRequest)]] = [:]
        for (i, e) in events.enumerated() where results[i] == nil {
            if rulesOf[e.community] == nil { rulesOf[e.community] = try await rules(community: e.community, on: connection, logger: logger) }
            var earned = Earned(outcome: .noRule, points: 0, rule: nil)
            if let rule = rulesOf[e.community]?.first(where: { $0.kind == e.kind && $0.holds(at: e.at) }) {
                earned.rule = rule.id
                let points = rule.earns(e.amountFen)
                if points > 0 {
                    earned = Earned(outcome: .granted, points: points, rule: rule.id)
                    let lifetime = TimeInterval(rule.lifetimeDays > 0 ? rule.lifetimeDays : 365) * 86_400
                    grants[e.community, default: []].append(
                        (
                            i,
                            .init(
                                resident: e.resident, points: points, reason: e.reason.isEmpty ? rule.name : e.reason,
                                expiresAt: Date().addingTimeInterval(lifetime), key: e.key)
                        ))
                }
            }
            results[i] = earned
        }
        var oneByOne: Set<Int> = []
        for (community, batch) in grants {
            try await connection.run("SAVEPOINT points_earning_batch", logger: logger)
            do {
                _ = try await PointsStore().grantMany(batch.map(\.1), community: community, by: user, on: connection, logger: logger)
                try await connection.run("RELEASE SAVEPOINT points_earning_batch", logger: logger)
            } catch let error as LinliError where error.code == .resourceExhausted {
                try await connection.run("ROLLBACK TO SAVEPOINT points_earning_batch", logger: logger)
                for (i, _) in batch { oneByOne.insert(i) }
            }
        }
        var fresh: [Int] = []
        for (i, e) in events.enumerated() where !answered.contains(i) {
            if oneByOne.contains(i) {
                results[i] = try await earn(
                    e.kind, community: e.community, resident: e.resident, amountFen: e.amountFen, reason: e.reason, key: e.key, at: e.at,
                    by: user, on: connection, logger: logger)
            } else {
                fresh.append(i)
            }
        }
        if !fresh.isEmpty {
            let rows = fresh.map { (events[$0], results[$0] ?? Earned(outcome: .noRule, points: 0, rule: nil)) }
            try await connection.run(
                """
                INSERT INTO points_earnings (community_id, operation_key, kind, rule_id, resident_id, amount_fen, points, outcome)
                SELECT c, k, kind, nullif(rule, '')::uuid, r, amount, points, outcome
                FROM unnest(\(rows.map(\.0.community.uuid))::uuid[], \(rows.map(\.0.key))::text[], \(rows.map(\.0.kind.rawValue))::text[],
                            \(rows.map { $0.1.rule?.uuidString ?? "" })::text[], \(rows.map(\.0.resident))::uuid[], \(rows.map(\.0.amountFen))::int8[],
                            \(rows.map(\.1.points))::int8[], \(rows.map(\.1.outcome.rawValue))::text[])
                     AS e (c, k, kind, rule, r, amount, points, outcome)
                """, logger: logger)
        }
        return results.map { $0 ?? Earned(outcome: .noRule, points: 0, rule: nil) }
    }

    /// The resident who earns on a payment for `room`: the payer when they live in the room,
    /// else the room's owner living there today (the earliest), else anyone living there.
    public func earner(room: RoomID, payer: UserID?, on connection: PostgresConnection, logger: Logger) async throws -> UUID? {
        let rows = try await connection.run(
            """
            SELECT r.id FROM residencies h JOIN residents r ON r.id = h.resident_id JOIN rooms rm ON rm.id = h.room_id
            WHERE h.room_id = \(room.uuid) AND resides_on(h.move_in, h.move_out, community_today(rm.community_id))
            ORDER BY (r.user_id IS NOT DISTINCT FROM \(payer?.uuid)) DESC, (h.relation = 'owner') DESC, h.move_in, h.id
            LIMIT 1
            """, logger: logger)
        for try await id in rows.decode(UUID.self) { return id }
        return nil
    }

    // MARK: reports

    public struct Report: Sendable {
        public var granted: Int64 = 0
        public var spent: Int64 = 0
        public var reversed: Int64 = 0
        public var expired: Int64 = 0
        public var refusedGrants: Int64 = 0
        public var budget: PointsStore.Budget?
        public var merchants: [(merchant: UUID, name: String, points: Int64, orders: Int64)] = []
    }

    /// Points moved in the period [from, to) (community days), the budget now, points spent on
    /// orders per merchant (orders paid in the period, less those refunded).
    public func report(community: CommunityID, from: String, to: String, on connection: PostgresConnection, logger: Logger) async throws
        -> Report
    {
        var report = Report()
        for try await (granted, spent, reversed, expired, refused) in try await connection.run(
            """
            WITH span AS (SELECT community_day_start(\(community.uuid), \(from)::date) AS a, community_day_start(\(community.uuid), \(to)::date) AS b)
            SELECT coalesce(sum(points) FILTER (WHERE kind = 'grant'), 0)::int8, coalesce(sum(points) FILTER (WHERE kind = 'commit'), 0)::int8,
                   coalesce(sum(points) FILTER (WHERE kind = 'reverse'), 0)::int8, coalesce(sum(points) FILTER (WHERE kind = 'expire'), 0)::int8,
                   (SELECT count(*) FROM points_earnings e, span WHERE e.community_id = \(community.uuid) AND e.outcome = 'budget_exhausted'
                        AND e.created_at >= span.a AND e.created_at < span.b)::int8
            FROM points_transfers t, span WHERE t.community_id = \(community.uuid) AND t.created_at >= span.a AND t.created_at < span.b
            """, logger: logger
        ).decode((Int64, Int64, Int64, Int64, Int64).self) {
            (report.granted, report.spent, report.reversed, report.expired, report.refusedGrants) = (granted, spent, reversed, expired, refused)
        }
        report.budget = try await PointsStore().budget(community, on: connection, logger: logger)
        for try await r in try await connection.run(
            """
            SELECT o.merchant_id, m.name, sum(o.points)::int8, count(*)::int8
            FROM orders o JOIN merchants m ON m.id = o.merchant_id
            WHERE o.community_id = \(community.uuid) AND o.points > 0 AND o.state NOT IN ('unpaid', 'cancelled', 'returned')
              AND o.paid_at >= community_day_start(\(community.uuid), \(from)::date) AND o.paid_at < community_day_start(\(community.uuid), \(to)::date)
            GROUP BY o.merchant_id, m.name ORDER BY 3 DESC, 1
            """, logger: logger
        ).decode((UUID, String, Int64, Int64).self) { report.merchants.append(r) }
        return report
    }
}
