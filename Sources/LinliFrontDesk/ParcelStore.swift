import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Parcels kept for residents, in the caller's tenant transaction.
public struct ParcelStore: Sendable {
    public init() {}

    public struct Parcel: Sendable, Equatable {
        public var id: UUID
        public var community: CommunityID
        public var resident: UserID
        public var carrier: String
        public var trackingNumber: String
        public var shelf: String
        public var pickupCode: String
        public var loggedAt: Date
        public var pickedUpAt: Date?
        public var ageDays: Int
    }

    /// Staff log a parcel for a resident; the resident is told the pickup code through the outbox.
    public func log(
        community: CommunityID, resident: UserID, carrier: String, trackingNumber: String, shelf: String,
        by principal: Principal, on connection: PostgresConnection, logger: Logger
    ) async throws -> Parcel {
        try Scope.requireCommunity(principal, community)
        guard try await FrontDeskSQL.isResident(resident, of: community, connection, logger) else {
            throw LinliError.invalid("resident_id", "is not a resident of this community")
        }
        let known = try await connection.run(
            """
            SELECT 1 FROM parcels WHERE community_id = \(community.uuid) AND carrier = \(carrier) AND tracking_number = \(trackingNumber)
            """, logger: logger)
        for try await _ in known {
            throw LinliError(.alreadyExists, "tracking_number: this parcel is already logged", field: "tracking_number")
        }
        let id = UUIDv7.make()
        try await FrontDeskSQL.writeWithFreshCode(connection, logger) { code in
            """
            INSERT INTO parcels (id, community_id, resident_id, carrier, tracking_number, shelf, pickup_code, logged_by)
            VALUES (\(id), \(community.uuid), \(resident.uuid), \(carrier), \(trackingNumber), \(shelf), \(code), \(principal.subjectID.uuid))
            ON CONFLICT DO NOTHING RETURNING 1
            """
        }
        let parcel = try await load(id, connection, logger)
        var arrived = Linli_Events_V1_ParcelArrived()
        arrived.parcelID = id.uuidString.lowercased()
        arrived.pickupCode = parcel.pickupCode
        arrived.carrier = parcel.carrier
        try await Outbox.enqueue(Topic.parcelArrived, arrived, to: parcel.resident, on: connection, logger: logger)
        return parcel
    }

    /// Staff hand a parcel over against its pickup code.
    public func pickUp(
        community: CommunityID, code: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Parcel {
        try Scope.requireCommunity(principal, community)
        let rows = try await connection.run(
            """
            UPDATE parcels SET picked_up_at = now(), handed_by = \(principal.subjectID.uuid)
            WHERE community_id = \(community.uuid) AND pickup_code = \(code) AND picked_up_at IS NULL RETURNING id
            """, logger: logger)
        for try await id in rows.decode(UUID.self) { return try await load(id, connection, logger) }
        throw LinliError.notFound("waiting parcel with this pickup code")
    }

    /// Parcels waiting: a resident's own, or all of the community for staff; oldest first.
    public func waiting(
        community: CommunityID, minAgeDays: Int, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Parcel] {
        try Scope.requireCommunity(principal, community)
        let own = principal.role == .resident
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) FROM parcels
            WHERE community_id = \(community.uuid) AND picked_up_at IS NULL AND (NOT \(own) OR resident_id = \(principal.subjectID.uuid))
              AND logged_at <= now() - make_interval(days => \(Int32(minAgeDays)))
            ORDER BY logged_at, id LIMIT 500
            """, logger: logger)
        var result: [Parcel] = []
        for try await row in rows { result.append(try Self.decode(row)) }
        return result
    }

    static let columns = """
        id, community_id, resident_id, carrier, tracking_number, shelf, pickup_code, logged_at, picked_up_at,
        extract(day FROM coalesce(picked_up_at, now()) - logged_at)::int4
        """

    private func load(_ id: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Parcel {
        let rows = try await connection.run("SELECT \(unescaped: Self.columns) FROM parcels WHERE id = \(id)", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        throw LinliError.notFound("parcel")
    }

    static func decode(_ row: PostgresRow) throws -> Parcel {
        let (id, community, resident, carrier, tracking, shelf, code, logged, picked, age) =
            try row.decode((UUID, UUID, UUID, String, String, String, String, Date, Date?, Int32).self)
        return Parcel(
            id: id, community: CommunityID(community), resident: UserID(resident), carrier: carrier, trackingNumber: tracking,
            shelf: shelf, pickupCode: code, loggedAt: logged, pickedUpAt: picked, ageDays: Int(age))
    }
}
