import Foundation
import LinliCore
import Logging
import PostgresNIO

/// The points ledger of a community (points.proto): accounts that always sum to zero, lots with
/// expiries, two-phase holds, one operation per key. Everything runs in the caller's tenant
/// transaction; a resident's accounts are locked (their available account row) for every change,
/// so two changes of one resident serialise and its version moves once per change.
public struct PointsStore: Sendable {
    public init() {}

    public enum Kind: String, Sendable { case issuance, budget, available, frozen, spent, expired }

    public struct Balance: Sendable, Equatable {
        public var resident: UUID
        public var available: Int64
        public var frozen: Int64
        public var version: Int64
        public var nextExpiry: Date?
        public var nextExpiryPoints: Int64

        public init(resident: UUID, available: Int64, frozen: Int64, version: Int64, nextExpiry: Date?, nextExpiryPoints: Int64) {
            self.resident = resident
            self.available = available
            self.frozen = frozen
            self.version = version
            self.nextExpiry = nextExpiry
            self.nextExpiryPoints = nextExpiryPoints
        }

        /// The same balance, the next expiry to the millisecond the cache keeps.
        public func matches(_ other: Balance) -> Bool {
            func ms(_ d: Date?) -> Int64? { d.map { Int64(exactly: ($0.timeIntervalSince1970 * 1000).rounded(.down)) ?? 0 } }
            return resident == other.resident && available == other.available && frozen == other.frozen && version == other.version
                && nextExpiryPoints == other.nextExpiryPoints && ms(nextExpiry) == ms(other.nextExpiry)
        }
    }

    public struct Budget: Sendable {
        public var community: CommunityID
        public var funded: Int64
        public var left: Int64
        public var granted: Int64
        public var spent: Int64
        public var expired: Int64
        public var outstanding: Int64
    }

    public struct Hold: Sendable {
        public enum State: String, Sendable, CaseIterable { case held, committed, released, reversed }
        public var id: UUID
        public var community: CommunityID
        public var resident: UUID
        public var points: Int64
        public var state: State
        public var operationKey: String
        public var lots: [(lot: UUID, points: Int64, expiresAt: Date)]
    }

    public struct Grant: Sendable {
        public var resident: UUID
        public var points: Int64
        public var lot: UUID
        public var expiresAt: Date
    }

    // MARK: accounts and transfers

    /// The account's id, made on first use.
    func account(
        _ kind: Kind, community: CommunityID, resident: UUID? = nil, shard: Int16 = 0, on connection: PostgresConnection, logger: Logger
    ) async throws -> UUID {
        let rows = try await connection.run(
            """
            WITH made AS (
                INSERT INTO points_accounts (id, community_id, kind, resident_id, shard)
                VALUES (\(UUIDv7.make()), \(community.uuid), \(kind.rawValue), \(resident), \(shard))
                ON CONFLICT (community_id, kind, resident_id, shard) DO NOTHING
                RETURNING id
            )
            SELECT id FROM made
            UNION ALL
            SELECT id FROM points_accounts
            WHERE community_id = \(community.uuid) AND kind = \(kind.rawValue) AND resident_id IS NOT DISTINCT FROM \(resident) AND shard = \(shard)
            LIMIT 1
            """, logger: logger)
        for try await id in rows.decode(UUID.self) { return id }
        throw LinliError(.unavailable, "points account busy; try again")
    }

    /// Moves `points` between two accounts; a guarded account that would go below zero refuses
    /// with `short`.
    func transfer(
        _ points: Int64, from: UUID, to: UUID, kind: String, key: String, community: CommunityID, lot: UUID? = nil, hold: UUID? = nil,
        memo: String = "", by user: UserID?, short: @autoclosure () -> LinliError, on connection: PostgresConnection, logger: Logger
    ) async throws {
        let taken = try await connection.run(
            """
            UPDATE points_accounts SET balance = balance - \(points)
            WHERE id = \(from) AND (kind = 'issuance' OR balance >= \(points))
            RETURNING id
            """, logger: logger)
        var moved = false
        for try await _ in taken.decode(UUID.self) { moved = true }
        guard moved else { throw short() }
        try await connection.run(
            """
            WITH credit AS (UPDATE points_accounts SET balance = balance + \(points) WHERE id = \(to))
            INSERT INTO points_transfers (community_id, from_account, to_account, points, kind, operation_key, lot_id, hold_id, memo, created_by)
            VALUES (\(community.uuid), \(from), \(to), \(points), \(kind), \(key), \(lot), \(hold), \(memo), \(user?.uuid))
            """, logger: logger)
    }

    /// The resident's community, when `principal` may act there (otherwise not found); locks the
    /// resident's available account, made on first use, and returns it.
    func lockResident(_ resident: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws
        -> (community: CommunityID, available: UUID)
    {
        var community: CommunityID?
        for try await id in try await connection.run("SELECT community_id FROM residents WHERE id = \(resident)", logger: logger).decode(UUID.self) {
            community = CommunityID(id)
        }
        guard let community, principal.canAct(in: community) else { throw LinliError.notFound("resident") }
        let available = try await account(.available, community: community, resident: resident, on: connection, logger: logger)
        try await connection.run("SELECT 1 FROM points_accounts WHERE id = \(available) FOR UPDATE", logger: logger)
        return (community, available)
    }

    func bump(_ available: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("UPDATE points_accounts SET version = version + 1 WHERE id = \(available)", logger: logger)
    }

    /// Claims `key` for an operation; returns the first result's id when the same operation was
    /// applied before (a replay), nil when this is the first time.
    func claim(
        _ key: String, kind: String, community: CommunityID, resident: UUID?, points: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws -> (replay: Bool, result: UUID?) {
        let made = try await connection.run(
            """
            INSERT INTO points_operations (community_id, operation_key, kind, resident_id, points)
            VALUES (\(community.uuid), \(key), \(kind), \(resident), \(points))
            ON CONFLICT DO NOTHING
            RETURNING 1
            """, logger: logger)
        for try await _ in made { return (false, nil) }
        let rows = try await connection.run(
            """
            SELECT kind, resident_id, points, result_id FROM points_operations
            WHERE community_id = \(community.uuid) AND operation_key = \(key)
            """, logger: logger)
        for try await (was, whose, amount, result) in rows.decode((String, UUID?, Int64, UUID?).self) {
            guard was == kind, whose == resident, amount == points else {
                throw LinliError(.failedPrecondition, "operation_key: already used for another operation", field: "operation_key")
            }
            return (true, result)
        }
        throw LinliError(.unavailable, "points operation busy; try again")
    }

    // MARK: budget

    public func fund(
        _ points: Int64, community: CommunityID, memo: String, key: String, by user: UserID, on connection: PostgresConnection, logger: Logger
    )
        async throws -> Budget
    {
        let (replay, _) = try await claim(key, kind: "fund", community: community, resident: nil, points: points, on: connection, logger: logger)
        if !replay {
            // Spread over the budget's shards, in shard order (the order every multi-shard grant locks them in).
            let issuance = try await account(.issuance, community: community, on: connection, logger: logger)
            let shards = Int64(Self.budgetShards)
            for shard in 0..<Self.budgetShards {
                let part = points / shards + (Int64(shard) < points % shards ? 1 : 0)
                guard part > 0 else { continue }
                let budget = try await account(.budget, community: community, shard: shard, on: connection, logger: logger)
                try await transfer(
                    part, from: issuance, to: budget, kind: "fund", key: key, community: community, memo: memo, by: user,
                    short: LinliError(.internal, "issuance refused"), on: connection, logger: logger)
            }
        }
        return try await self.budget(community, on: connection, logger: logger)
    }

    public func budget(_ community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> Budget {
        let rows = try await connection.run(
            """
            SELECT coalesce(-sum(balance) FILTER (WHERE kind = 'issuance'), 0)::int8,
                   coalesce(sum(balance) FILTER (WHERE kind = 'budget'), 0)::int8,
                   coalesce(sum(balance) FILTER (WHERE kind = 'spent'), 0)::int8,
                   coalesce(sum(balance) FILTER (WHERE kind = 'expired'), 0)::int8,
                   coalesce(sum(balance) FILTER (WHERE kind IN ('available', 'frozen')), 0)::int8
            FROM points_accounts WHERE community_id = \(community.uuid)
            """, logger: logger)
        for try await (funded, left, spent, expired, outstanding) in rows.decode((Int64, Int64, Int64, Int64, Int64).self) {
            return Budget(
                community: community, funded: funded, left: left, granted: funded - left, spent: spent, expired: expired, outstanding: outstanding)
        }
        return Budget(community: community, funded: 0, left: 0, granted: 0, spent: 0, expired: 0, outstanding: 0)
    }

    // MARK: grants

    /// How many rows the budget is kept in.
    static let budgetShards: Int16 = 16

    /// Locks budget shards that hold `points` between them and says how much to take from each:
    /// one free shard that holds them all (a random one, skipping those other grants hold),
    /// else one that holds them all waiting for it, else several in shard order; refused whole
    /// when the budget is short.
    func takeBudget(_ points: Int64, community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws
        -> [(UUID, Int64)]
    {
        let start = Int16.random(in: 0..<Self.budgetShards)
        for skip in [true, false] {
            let rows = try await connection.run(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT id FROM points_accounts WHERE community_id = $1 AND kind = 'budget' AND balance >= $2
                        ORDER BY (shard + $3) % \(Self.budgetShards) LIMIT 1 FOR UPDATE\(skip ? " SKIP LOCKED" : "")
                        """,
                    binds: {
                        var b = PostgresBindings()
                        b.append(community.uuid)
                        b.append(points)
                        b.append(start)
                        return b
                    }()), logger: logger)
            for try await id in rows.decode(UUID.self) { return [(id, points)] }
        }
        let rows = try await connection.run(
            """
            SELECT id, balance FROM points_accounts WHERE community_id = \(community.uuid) AND kind = 'budget' AND balance > 0
            ORDER BY shard FOR UPDATE
            """, logger: logger)
        var parts: [(UUID, Int64)] = []
        var left = points
        for try await (id, balance) in rows.decode((UUID, Int64).self) where left > 0 {
            let take = min(balance, left)
            parts.append((id, take))
            left -= take
        }
        guard left == 0 else { throw LinliError(.resourceExhausted, "points: the community's points budget is exhausted", field: "points") }
        return parts
    }

    /// Grants `points` to a resident from the budget as a lot expiring at `expiresAt`; refused
    /// whole when the budget is short.
    public func grant(
        _ points: Int64, to resident: UUID, reason: String, expiresAt: Date, key: String, for principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Grant {
        let (community, available) = try await lockResident(resident, for: principal, on: connection, logger: logger)
        let (replay, first) = try await claim(
            key, kind: "grant", community: community, resident: resident, points: points, on: connection, logger: logger)
        if replay, let first {
            for try await (lot, expires) in try await connection.run(
                "SELECT id, expires_at FROM points_lots WHERE id = \(first)", logger: logger
            ).decode((UUID, Date).self) {
                return Grant(resident: resident, points: points, lot: lot, expiresAt: expires)
            }
        }
        let lot = UUIDv7.make()
        for (shard, part) in try await takeBudget(points, community: community, on: connection, logger: logger) {
            try await transfer(
                part, from: shard, to: available, kind: "grant", key: key, community: community, lot: lot, memo: reason, by: principal.subjectID,
                short: LinliError(.internal, "budget shard changed under its lock"), on: connection, logger: logger)
        }
        try await connection.run(
            """
            INSERT INTO points_lots (id, community_id, resident_id, granted, remaining, expires_at, reason)
            VALUES (\(lot), \(community.uuid), \(resident), \(points), \(points), \(expiresAt), \(reason))
            """, logger: logger)
        try await connection.run(
            "UPDATE points_operations SET result_id = \(lot) WHERE community_id = \(community.uuid) AND operation_key = \(key)", logger: logger)
        try await bump(available, on: connection, logger: logger)
        return Grant(resident: resident, points: points, lot: lot, expiresAt: expiresAt)
    }

    // MARK: expiry

    /// Expires every due lot of the community (the job), one resident at a time in the order
    /// every other change takes: the resident's account first, then the lots. Returns the
    /// points taken.
    public func expireDue(community: CommunityID, at time: Date, on connection: PostgresConnection, logger: Logger) async throws
        -> (points: Int64, residents: [UUID])
    {
        var residents: [UUID] = []
        for try await id in try await connection.run(
            """
            SELECT DISTINCT resident_id FROM points_lots
            WHERE community_id = \(community.uuid) AND remaining > 0 AND expires_at <= \(time)
            ORDER BY resident_id LIMIT 1000
            """, logger: logger
        ).decode(UUID.self) { residents.append(id) }
        var taken: Int64 = 0
        for resident in residents {
            let available = try await account(.available, community: community, resident: resident, on: connection, logger: logger)
            try await connection.run("SELECT 1 FROM points_accounts WHERE id = \(available) FOR UPDATE", logger: logger)
            taken += try await expire(community: community, resident: resident, at: time, on: connection, logger: logger)
        }
        return (taken, residents)
    }

    /// Takes the points left in the resident's lots expired by `time` to the expired account;
    /// the caller holds the resident's account lock. Returns the points taken.
    @discardableResult
    func expire(community: CommunityID, resident: UUID, at time: Date, on connection: PostgresConnection, logger: Logger)
        async throws -> Int64
    {
        let rows = try await connection.run(
            """
            UPDATE points_lots l SET remaining = 0
            FROM (SELECT id, remaining FROM points_lots
                  WHERE community_id = \(community.uuid) AND remaining > 0 AND expires_at <= \(time)
                    AND resident_id = \(resident)
                  ORDER BY id
                  FOR UPDATE) AS due
            WHERE l.id = due.id
            RETURNING l.id, l.resident_id, due.remaining
            """, logger: logger)
        var due: [(lot: UUID, resident: UUID, points: Int64)] = []
        for try await row in rows.decode((UUID, UUID, Int64).self) { due.append(row) }
        guard !due.isEmpty else { return 0 }
        let expired = try await account(.expired, community: community, on: connection, logger: logger)
        for (lot, whose, points) in due {
            let available = try await account(.available, community: community, resident: whose, on: connection, logger: logger)
            try await transfer(
                points, from: available, to: expired, kind: "expire", key: "expire:\(lot.uuidString.lowercased())", community: community,
                lot: lot, by: nil, short: LinliError(.internal, "expired points not available"), on: connection, logger: logger)
            try await bump(available, on: connection, logger: logger)
        }
        return due.reduce(0) { $0 + $1.points }
    }

    // MARK: holds

    static let holdColumns = "id, community_id, resident_id, points, state, operation_key, lots::text"

    static func holds(_ rows: PostgresRowSequence) async throws -> [Hold] {
        struct Share: Decodable {
            var lot: UUID
            var points: Int64
            var expires: Date
        }
        var result: [Hold] = []
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        for try await r in rows.decode((UUID, UUID, UUID, Int64, String, String, String).self) {
            let shares = (try? decoder.decode([Share].self, from: Data(r.6.utf8))) ?? []
            result.append(
                Hold(
                    id: r.0, community: CommunityID(r.1), resident: r.2, points: r.3, state: Hold.State(rawValue: r.4) ?? .held, operationKey: r.5,
                    lots: shares.map { ($0.lot, $0.points, $0.expires) }))
        }
        return result
    }

    /// Holds `points` of the resident's for an order, from the lots that expire soonest (lots
    /// already expired are first taken away); one hold per key.
    public func freeze(_ points: Int64, of resident: UUID, key: String, for principal: Principal, on connection: PostgresConnection, logger: Logger)
        async throws -> Hold
    {
        let (community, available) = try await lockResident(resident, for: principal, on: connection, logger: logger)
        let existing = try await Self.holds(
            try await connection.run(
                PostgresQuery(
                    unsafeSQL: "SELECT \(Self.holdColumns) FROM points_holds WHERE community_id = $1 AND operation_key = $2",
                    binds: {
                        var b = PostgresBindings(); b.append(community.uuid); b.append(key); return b
                    }()), logger: logger))
        if let hold = existing.first {
            guard hold.resident == resident, hold.points == points else {
                throw LinliError(.failedPrecondition, "operation_key: already holds other points", field: "operation_key")
            }
            return hold
        }
        try await expire(community: community, resident: resident, at: Date(), on: connection, logger: logger)
        // Soonest-expiring lots first, each taking what it has until the points are covered.
        let lots = try await connection.run(
            """
            SELECT id, remaining, expires_at FROM points_lots
            WHERE resident_id = \(resident) AND remaining > 0 AND expires_at > now()
            ORDER BY expires_at, id
            FOR UPDATE
            """, logger: logger)
        var shares: [(lot: UUID, points: Int64, expiresAt: Date)] = []
        var left = points
        for try await (lot, remaining, expires) in lots.decode((UUID, Int64, Date).self) where left > 0 {
            let take = min(left, remaining)
            shares.append((lot, take, expires))
            left -= take
        }
        guard left == 0 else {
            throw LinliError(.failedPrecondition, "points: only \(points - left) points are available", field: "points")
        }
        let hold = UUIDv7.make()
        try await connection.run(
            """
            UPDATE points_lots l SET remaining = l.remaining - s.take
            FROM unnest(\(shares.map(\.lot)), \(shares.map(\.points))) AS s(id, take) WHERE l.id = s.id
            """, logger: logger)
        let frozen = try await account(.frozen, community: community, resident: resident, on: connection, logger: logger)
        try await transfer(
            points, from: available, to: frozen, kind: "freeze", key: key, community: community, hold: hold, by: principal.subjectID,
            short: LinliError(.failedPrecondition, "points: not enough points available", field: "points"), on: connection, logger: logger)
        let json =
            "["
            + shares.map {
                #"{"lot":"\#($0.lot.uuidString.lowercased())","points":\#($0.points),"expires":\#(Int64($0.expiresAt.timeIntervalSince1970))}"#
            }
            .joined(separator: ",") + "]"
        try await connection.run(
            """
            INSERT INTO points_holds (id, community_id, resident_id, points, operation_key, lots)
            VALUES (\(hold), \(community.uuid), \(resident), \(points), \(key), \(json)::jsonb)
            """, logger: logger)
        try await bump(available, on: connection, logger: logger)
        return Hold(id: hold, community: community, resident: resident, points: points, state: .held, operationKey: key, lots: shares)
    }

    /// Spends a hold (`commit`) or gives its points back to their lots (`release`); the same
    /// settlement again answers the hold as it is, the other one is refused.
    public func settle(_ id: UUID, commit: Bool, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Hold {
        try await settle(id, to: commit ? .committed : .released, for: principal, on: connection, logger: logger)
    }

    /// Moves a hold to `wanted`: held → committed (spent) or released (back to its lots);
    /// committed → reversed (a refund: the spent points back to their lots). The same move again
    /// answers the hold as it is; any other is refused.
    public func settle(_ id: UUID, to wanted: Hold.State, for principal: Principal, on connection: PostgresConnection, logger: Logger)
        async throws -> Hold
    {
        var b = PostgresBindings()
        b.append(id)
        guard
            let found = try await Self.holds(
                try await connection.run(
                    PostgresQuery(unsafeSQL: "SELECT \(Self.holdColumns) FROM points_holds WHERE id = $1", binds: b), logger: logger)
            ).first, principal.canAct(in: found.community)
        else { throw LinliError.notFound("hold") }
        let (community, available) = try await lockResident(found.resident, for: principal, on: connection, logger: logger)
        guard
            var hold = try await Self.holds(
                try await connection.run(
                    PostgresQuery(unsafeSQL: "SELECT \(Self.holdColumns) FROM points_holds WHERE id = $1 FOR UPDATE", binds: b), logger: logger)
            ).first
        else { throw LinliError.notFound("hold") }
        if hold.state == wanted { return hold }
        let from: Hold.State = wanted == .reversed ? .committed : .held
        guard hold.state == from, wanted != .held else { throw LinliError(.failedPrecondition, "the hold is already \(hold.state.rawValue)") }
        let frozen = try await account(.frozen, community: community, resident: hold.resident, on: connection, logger: logger)
        let key = "\(wanted.rawValue):\(hold.id.uuidString.lowercased())"
        let missing = LinliError(.internal, "held points missing")
        switch wanted {
        case .committed:
            let spent = try await account(.spent, community: community, on: connection, logger: logger)
            try await transfer(
                hold.points, from: frozen, to: spent, kind: "commit", key: key, community: community, hold: hold.id, by: principal.subjectID,
                short: missing, on: connection, logger: logger)
        case .released, .reversed:
            let source = wanted == .released ? frozen : try await account(.spent, community: community, on: connection, logger: logger)
            try await transfer(
                hold.points, from: source, to: available, kind: wanted == .released ? "release" : "reverse", key: key, community: community,
                hold: hold.id, by: principal.subjectID, short: missing, on: connection, logger: logger)
            // Back to the lots they came from (a lot that expired meanwhile expires them again).
            try await connection.run(
                """
                UPDATE points_lots l SET remaining = l.remaining + s.back
                FROM unnest(\(hold.lots.map(\.lot)), \(hold.lots.map(\.points))) AS s(id, back) WHERE l.id = s.id
                """, logger: logger)
            try await expire(community: community, resident: hold.resident, at: Date(), on: connection, logger: logger)
        case .held:
            break
        }
        try await connection.run("UPDATE points_holds SET state = \(wanted.rawValue), settled_at = now() WHERE id = \(hold.id)", logger: logger)
        try await bump(available, on: connection, logger: logger)
        hold.state = wanted
        return hold
    }

    // MARK: balances

    /// The resident's balance as the ledger has it: available (less lots expired but not yet
    /// taken away), frozen, the version, the next lot to expire.
    public func balance(_ resident: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Balance {
        try await balances(residents: [resident], on: connection, logger: logger).first
            ?? Balance(resident: resident, available: 0, frozen: 0, version: 0, nextExpiry: nil, nextExpiryPoints: 0)
    }

    /// The balances of `residents` (those with no account yet are left out).
    public func balances(residents: [UUID], on connection: PostgresConnection, logger: Logger) async throws -> [Balance] {
        let rows = try await connection.run(
            """
            SELECT a.resident_id, a.balance - coalesce(x.due, 0), coalesce(f.balance, 0), a.version, n.expires_at, coalesce(n.points, 0)
            FROM points_accounts a
            LEFT JOIN points_accounts f ON f.community_id = a.community_id AND f.kind = 'frozen' AND f.resident_id = a.resident_id
            LEFT JOIN LATERAL (SELECT sum(remaining)::int8 AS due FROM points_lots
                               WHERE resident_id = a.resident_id AND remaining > 0 AND expires_at <= now()) x ON true
            LEFT JOIN LATERAL (SELECT expires_at, sum(remaining)::int8 AS points FROM points_lots
                               WHERE resident_id = a.resident_id AND remaining > 0 AND expires_at > now()
                               GROUP BY expires_at ORDER BY expires_at LIMIT 1) n ON true
            WHERE a.kind = 'available' AND a.resident_id = ANY(\(residents))
            """, logger: logger)
        var result: [Balance] = []
        for try await (resident, available, frozen, version, next, nextPoints) in rows.decode((UUID, Int64, Int64, Int64, Date?, Int64).self) {
            result.append(
                Balance(resident: resident, available: available, frozen: frozen, version: version, nextExpiry: next, nextExpiryPoints: nextPoints))
        }
        return result
    }

    /// Every resident of the community with points accounts.
    public func residents(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> [UUID] {
        var result: [UUID] = []
        for try await id in try await connection.run(
            "SELECT resident_id FROM points_accounts WHERE community_id = \(community.uuid) AND kind = 'available' ORDER BY resident_id",
            logger: logger
        ).decode(UUID.self) { result.append(id) }
        return result
    }

    /// Whether the community's accounts sum to zero and each equals its transfers.
    public func ledgerBalanced(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.run(
            """
            SELECT coalesce(sum(a.balance), 0) = 0
                   AND NOT EXISTS (
                     SELECT 1 FROM points_accounts a2
                     WHERE a2.community_id = \(community.uuid)
                       AND a2.balance <> coalesce((SELECT sum(points) FROM points_transfers WHERE to_account = a2.id), 0)
                                       - coalesce((SELECT sum(points) FROM points_transfers WHERE from_account = a2.id), 0))
            FROM points_accounts a WHERE a.community_id = \(community.uuid)
            """, logger: logger)
        for try await ok in rows.decode(Bool.self) { return ok }
        return true
    }
}
