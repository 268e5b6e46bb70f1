import Foundation
import LinliCore
import Logging
import PostgresNIO

/// Many grants of one community in one transaction, in a fixed handful of statements whatever
/// their number: what a payment run's earnings (the `billing.paid` consumer takes its messages in
/// batches) need to reach six figures a minute, where one grant per transaction spends ten round
/// trips on each.
extension PointsStore {
    public struct GrantRequest: Sendable {
        public var resident: UUID
        public var points: Int64
        public var reason: String
        public var expiresAt: Date
        public var key: String

        public init(resident: UUID, points: Int64, reason: String, expiresAt: Date, key: String) {
            self.resident = resident
            self.points = points
            self.reason = reason
            self.expiresAt = expiresAt
            self.key = key
        }
    }

    /// The grants, each idempotent by its key as `grant` is (a replayed key answers its first lot
    /// and moves nothing). The residents' accounts are locked in resident order (the order the
    /// expiry job takes them), then one budget take covers the fresh grants together; the
    /// transfers, lots and operations are written from arrays. Refused whole
    /// (`resourceExhausted`) when the budget cannot cover them together: the caller then grants
    /// one by one, so that those the budget covers still go through.
    public func grantMany(
        _ requests: [GrantRequest], community: CommunityID, by user: UserID?, on connection: PostgresConnection, logger: Logger
    ) async throws -> [Grant] {
        guard !requests.isEmpty else { return [] }
        var keys: Set<String> = []
        for r in requests {
            guard keys.insert(r.key).inserted else { throw LinliError.invalid("operation_key", "\(r.key) appears twice in one batch") }
            guard r.points > 0 else { throw LinliError.invalid("points", "must be positive") }
        }
        let residents = Array(Set(requests.map(\.resident)))
        for try await count in try await connection.run(
            "SELECT count(*)::int8 FROM residents WHERE id = ANY(\(residents)::uuid[]) AND community_id = \(community.uuid)", logger: logger
        ).decode(Int64.self) {
            guard count == residents.count else { throw LinliError.notFound("resident") }
        }
        // The available accounts, made on first use, locked in resident order.
        try await connection.run(
            """
            INSERT INTO points_accounts (id, community_id, kind, resident_id, shard)
            SELECT a.id, \(community.uuid), 'available', a.resident, 0 FROM unnest(\(residents.map { _ in UUIDv7.make() })::uuid[],
                                                                                \(residents)::uuid[]) AS a (id, resident)
            ON CONFLICT (community_id, kind, resident_id, shard) DO NOTHING
            """, logger: logger)
        var accountOf: [UUID: UUID] = [:]
        for try await (id, resident) in try await connection.run(
            """
            SELECT id, resident_id FROM points_accounts
            WHERE community_id = \(community.uuid) AND kind = 'available' AND shard = 0 AND resident_id = ANY(\(residents)::uuid[])
            ORDER BY resident_id FOR UPDATE
            """, logger: logger
        ).decode((UUID, UUID).self) { accountOf[resident] = id }
        // The keys claimed; those claimed before are replays, which must be the same grants.
        var fresh: Set<String> = []
        for try await key in try await connection.run(
            """
            INSERT INTO points_operations (community_id, operation_key, kind, resident_id, points)
            SELECT \(community.uuid), o.key, 'grant', o.resident, o.points
            FROM unnest(\(requests.map(\.key))::text[], \(requests.map(\.resident))::uuid[], \(requests.map(\.points))::int8[])
                 AS o (key, resident, points)
            ON CONFLICT DO NOTHING RETURNING operation_key
            """, logger: logger
        ).decode(String.self) { fresh.insert(key) }
        var replayed: [String: Grant] = [:]
        let others = requests.filter { !fresh.contains($0.key) }
        if !others.isEmpty {
            let wanted = Dictionary(uniqueKeysWithValues: others.map { ($0.key, $0) })
            for try await (key, kind, resident, points, lot, expires) in try await connection.run(
                """
                SELECT o.operation_key, o.kind, o.resident_id, o.points, l.id, l.expires_at FROM points_operations o
                LEFT JOIN points_lots l ON l.id = o.result_id
                WHERE o.community_id = \(community.uuid) AND o.operation_key = ANY(\(others.map(\.key))::text[])
                """, logger: logger
            ).decode((String, String, UUID?, Int64, UUID?, Date?).self) {
                guard let request = wanted[key], kind == "grant", resident == request.resident, points == request.points, let lot, let expires
                else { throw LinliError(.failedPrecondition, "operation_key: \(key) already used for another operation", field: "operation_key") }
                replayed[key] = Grant(resident: request.resident, points: points, lot: lot, expiresAt: expires)
            }
            guard replayed.count == others.count else { throw LinliError(.unavailable, "points operation busy; try again") }
        }
        let new = requests.filter { fresh.contains($0.key) }
        var grants: [String: Grant] = replayed
        if !new.isEmpty {
            // One take of the budget for all of them, split over the shards it came from.
            var parts = try await takeBudget(new.reduce(0) { $0 + $1.points }, community: community, on: connection, logger: logger)
            var from: [UUID] = []
            var to: [UUID] = []
            var moved: [Int64] = []
            var transferKeys: [String] = []
            var transferLots: [UUID] = []
            var memos: [String] = []
            var lots: [UUID] = []
            var part = 0
            for request in new {
                guard let account = accountOf[request.resident] else { throw LinliError(.unavailable, "points account busy; try again") }
                let lot = UUIDv7.make()
                lots.append(lot)
                var left = request.points
                while left > 0, part < parts.count {
                    let take = min(left, parts[part].1)
                    from.append(parts[part].0)
                    to.append(account)
                    moved.append(take)
                    transferKeys.append(request.key)
                    transferLots.append(lot)
                    memos.append(request.reason)
                    parts[part].1 -= take
                    left -= take
                    if parts[part].1 == 0 { part += 1 }
                }
                grants[request.key] = Grant(resident: request.resident, points: request.points, lot: lot, expiresAt: request.expiresAt)
            }
            try await connection.run(
                """
                WITH debit AS (
                    UPDATE points_accounts a SET balance = a.balance - s.points
                    FROM (SELECT id, sum(points)::int8 AS points FROM unnest(\(from)::uuid[], \(moved)::int8[]) AS t (id, points) GROUP BY id) s
                    WHERE a.id = s.id
                ), credit AS (
                    UPDATE points_accounts a SET balance = a.balance + s.points, version = a.version + s.n
                    FROM (SELECT id, sum(points)::int8 AS points, count(DISTINCT lot)::int8 AS n
                          FROM unnest(\(to)::uuid[], \(moved)::int8[], \(transferLots)::uuid[]) AS t (id, points, lot) GROUP BY id) s
                    WHERE a.id = s.id
                )
                INSERT INTO points_transfers (community_id, from_account, to_account, points, kind, operation_key, lot_id, memo, created_by)
                SELECT \(community.uuid), t.f, t.t, t.p, 'grant', t.k, t.l, t.m, \(user?.uuid)
                FROM unnest(\(from)::uuid[], \(to)::uuid[], \(moved)::int8[], \(transferKeys)::text[], \(transferLots)::uuid[], \(memos)::text[])
                     AS t (f, t, p, k, l, m)
                """, logger: logger)
            try await connection.run(
                """
                WITH made AS (
                    INSERT INTO points_lots (id, community_id, resident_id, granted, remaining, expires_at, reason)
                    SELECT l.id, \(community.uuid), l.resident, l.points, l.points, l.expires, l.reason
                    FROM unnest(\(lots)::uuid[], \(new.map(\.resident))::uuid[], \(new.map(\.points))::int8[], \(new.map(\.expiresAt))::timestamptz[],
                                \(new.map(\.reason))::text[]) AS l (id, resident, points, expires, reason)
                )
                UPDATE points_operations o SET result_id = t.lot
                FROM unnest(\(new.map(\.key))::text[], \(lots)::uuid[]) AS t (key, lot)
                WHERE o.community_id = \(community.uuid) AND o.operation_key = t.key
                """, logger: logger)
        }
        return requests.compactMap { grants[$0.key] }
    }
}
