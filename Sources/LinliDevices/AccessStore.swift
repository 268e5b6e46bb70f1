import Crypto
import Foundation
import LinliCore
import LinliTenancy
import Logging
import NIOCore
import PostgresNIO

/// Doors, credentials, settings and QR keys of access control. Who may open what is decided in
/// SQL once (`device_whitelist()`, migration 0019); this store writes the facts it reads.
public struct AccessStore: Sendable {
    public init() {}

    public struct Door: Sendable {
        public var id: UUID
        public var communityID: CommunityID
        public var buildingID: BuildingID?
        public var code: String
        public var name: String
        public var deviceIDs: [DeviceID]
    }

    static let doorColumns = """
        d.id, d.community_id, d.building_id, d.code, d.name,
        COALESCE((SELECT array_agg(dd.device_id ORDER BY dd.device_id) FROM door_devices dd WHERE dd.door_id = d.id), '{}')
        """

    static func decodeDoors(_ rows: PostgresRowSequence) async throws -> [Door] {
        var result: [Door] = []
        for try await (id, community, building, code, name, devices) in rows.decode((UUID, UUID, UUID?, String, String, [UUID]).self) {
            result.append(
                Door(
                    id: id, communityID: CommunityID(community), buildingID: building.map(BuildingID.init), code: code, name: name,
                    deviceIDs: devices.map(DeviceID.init)))
        }
        return result
    }

    public func createDoor(
        community: CommunityID, building: BuildingID?, code: String, name: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> Door {
        try await Scope.requireExists(community, on: connection, logger: logger)
        if let building, try await Scope.communityOf(building: building, on: connection, logger: logger) != community {
            throw LinliError.invalid("building_id", "is not a building of this community")
        }
        let id = UUIDv7.make()
        let rows = try await connection.run(
            """
            INSERT INTO doors (id, community_id, building_id, code, name)
            VALUES (\(id), \(community.uuid), \(building?.uuid), \(code), \(name))
            ON CONFLICT (community_id, code) DO NOTHING RETURNING id
            """, logger: logger)
        var inserted = false
        for try await _ in rows { inserted = true }
        guard inserted else { throw LinliError(.alreadyExists, "code: a door with this code exists in the community", field: "code") }
        return try await door(id, on: connection, logger: logger)
    }

    public func door(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Door {
        let rows = try await connection.run("SELECT \(unescaped: Self.doorColumns) FROM doors d WHERE d.id = \(id)", logger: logger)
        guard let door = try await Self.decodeDoors(rows).first else { throw LinliError.notFound("door") }
        return door
    }

    public func doors(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> [Door] {
        let rows = try await connection.run(
            "SELECT \(unescaped: Self.doorColumns) FROM doors d WHERE d.community_id = \(community.uuid) ORDER BY d.code", logger: logger)
        return try await Self.decodeDoors(rows)
    }

    /// Binds or unbinds; the trigger marks the device's whitelist for reconciling.
    public func bind(door: Door, device: DeviceStore.Device, bound: Bool, on connection: PostgresConnection, logger: Logger) async throws {
        guard device.communityID == door.communityID else {
            throw LinliError.invalid("device_id", "is not a device of the door's community")
        }
        if bound {
            try await connection.run(
                "INSERT INTO door_devices (door_id, device_id) VALUES (\(door.id), \(device.id.uuid)) ON CONFLICT DO NOTHING", logger: logger)
        } else {
            try await connection.run(
                "DELETE FROM door_devices WHERE door_id = \(door.id) AND device_id = \(device.id.uuid)", logger: logger)
        }
    }

    // MARK: Credentials

    public struct Credential: Sendable {
        public var id: UUID
        public var communityID: CommunityID
        public var residentID: ResidentID?
        public var staffUserID: UserID?
        public var kind: String
        public var value: String
        public var validUntil: Date?
        public var revoked: Bool
        public var createdAt: Date
    }

    public enum Holder: Sendable {
        case resident(ResidentID)
        case staff(UserID)
    }

    static let credentialColumns =
        "id, community_id, resident_id, staff_user_id, kind, value, valid_until, revoked_at IS NOT NULL, created_at"

    static func decodeCredentials(_ rows: PostgresRowSequence) async throws -> [Credential] {
        var result: [Credential] = []
        typealias Row = (UUID, UUID, UUID?, UUID?, String, String, Date?, Bool, Date)
        for try await row in rows.decode(Row.self) {
            result.append(
                Credential(
                    id: row.0, communityID: CommunityID(row.1), residentID: row.2.map(ResidentID.init), staffUserID: row.3.map(UserID.init),
                    kind: row.4, value: row.4 == "pin" ? "" : row.5, validUntil: row.6, revoked: row.7, createdAt: row.8))
        }
        return result
    }

    /// What a PIN is stored and sent as: the hex SHA-256 of "<credential id>:<pin>".
    public static func pinDigest(credential: UUID, pin: String) -> String {
        Array(SHA256.hash(data: Array("\(credential.uuidString.lowercased()):\(pin)".utf8))).hexString
    }

    public func issue(
        community: CommunityID, holder: Holder, kind: String, value: String, validUntil: Date?, faceConsent: Bool, by user: UserID,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Credential {
        switch holder {
        case .resident(let resident):
            let rows = try await connection.run("SELECT community_id FROM residents WHERE id = \(resident.uuid)", logger: logger)
            var found: UUID?
            for try await id in rows.decode(UUID.self) { found = id }
            guard found == community.uuid else { throw LinliError.notFound("resident") }
        case .staff(let staff):
            guard try await Scope.isMember(staff, of: community, on: connection, logger: logger) else {
                throw LinliError.notFound("staff user")
            }
        }
        if kind == "face" && !faceConsent {
            throw LinliError.invalid("face_consent", "a face needs the person's separate consent; a card or PIN works without it")
        }
        let id = UUIDv7.make()
        let stored = kind == "pin" ? Self.pinDigest(credential: id, pin: value) : value
        var residentID: UUID?
        var staffID: UUID?
        switch holder {
        case .resident(let resident): residentID = resident.uuid
        case .staff(let staff): staffID = staff.uuid
        }
        let consent: Date? = kind == "face" ? Date() : nil
        let rows = try await connection.run(
            """
            INSERT INTO access_credentials (id, community_id, resident_id, staff_user_id, kind, value, valid_until, face_consent_at, created_by)
            VALUES (\(id), \(community.uuid), \(residentID), \(staffID), \(kind), \(stored), \(validUntil), \(consent), \(user.uuid))
            ON CONFLICT DO NOTHING
            RETURNING \(unescaped: Self.credentialColumns)
            """, logger: logger)
        guard let credential = try await Self.decodeCredentials(rows).first else {
            throw LinliError(.alreadyExists, "value: this card is in use in the community", field: "value")
        }
        return credential
    }

    public func credential(_ id: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Credential {
        let rows = try await connection.run(
            "SELECT \(unescaped: Self.credentialColumns) FROM access_credentials WHERE id = \(id)", logger: logger)
        guard let credential = try await Self.decodeCredentials(rows).first, principal.canAct(in: credential.communityID) else {
            throw LinliError.notFound("credential")
        }
        return credential
    }

    public func revoke(_ id: UUID, reason: String, for principal: Principal, on connection: PostgresConnection, logger: Logger)
        async throws -> Credential
    {
        _ = try await credential(id, for: principal, on: connection, logger: logger)
        try await connection.run(
            """
            UPDATE access_credentials SET revoked_at = now(), revoke_reason = \(reason)
            WHERE id = \(id) AND revoked_at IS NULL
            """, logger: logger)
        return try await credential(id, for: principal, on: connection, logger: logger)
    }

    public func credentials(
        community: CommunityID, holder: Holder?, after cursor: (Date, UUID)?, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> [Credential] {
        var resident: UUID?
        var staff: UUID?
        switch holder {
        case .resident(let id): resident = id.uuid
        case .staff(let id): staff = id.uuid
        case nil: break
        }
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.credentialColumns) FROM access_credentials
            WHERE community_id = \(community.uuid)
              AND (\(resident)::uuid IS NULL OR resident_id = \(resident))
              AND (\(staff)::uuid IS NULL OR staff_user_id = \(staff))
              AND (created_at, id) > (\(cursor?.0 ?? .distantPast), \(cursor?.1 ?? UUID(uuid: uuidZero)))
            ORDER BY created_at, id LIMIT \(limit + 1)
            """, logger: logger)
        return try await Self.decodeCredentials(rows)
    }

    /// Revokes every face of the resident; returns how many.
    public func withdrawFaces(resident: ResidentID, community: CommunityID, on connection: PostgresConnection, logger: Logger)
        async throws -> Int
    {
        let rows = try await connection.run(
            """
            UPDATE access_credentials SET revoked_at = now(), revoke_reason = 'face consent withdrawn'
            WHERE resident_id = \(resident.uuid) AND community_id = \(community.uuid) AND kind = 'face' AND revoked_at IS NULL
            RETURNING 1
            """, logger: logger)
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }

    /// The caller's resident record in the community (residents act on their own).
    public func residentOf(user: UserID, community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> ResidentID {
        ResidentID(try await OwnResident.of(user, community: community, on: connection, logger: logger))
    }

    /// The buildings the resident lives in today (empty: not living in the community).
    public func homeBuildings(of resident: ResidentID, community: CommunityID, on connection: PostgresConnection, logger: Logger)
        async throws -> [BuildingID]
    {
        let rows = try await connection.run(
            """
            SELECT DISTINCT cr.building_id FROM community_rooms(\(community.uuid)) cr
            JOIN residencies res ON res.room_id = cr.room_id
            WHERE res.resident_id = \(resident.uuid) AND resides_on(res.move_in, res.move_out, community_today(\(community.uuid)))
            ORDER BY 1
            """, logger: logger)
        var result: [BuildingID] = []
        for try await id in rows.decode(UUID.self) { result.append(BuildingID(id)) }
        return result
    }

    // MARK: Settings

    public struct Settings: Sendable, Equatable {
        public var strangerThreshold: Int
        public var strangerWindowMinutes: Int
        public var retentionDays: Int
        public static let defaults = Settings(strangerThreshold: 5, strangerWindowMinutes: 10, retentionDays: 30)

        public init(strangerThreshold: Int, strangerWindowMinutes: Int, retentionDays: Int) {
            self.strangerThreshold = strangerThreshold
            self.strangerWindowMinutes = strangerWindowMinutes
            self.retentionDays = retentionDays
        }
    }

    public func settings(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> Settings {
        let rows = try await connection.run(
            """
            SELECT stranger_threshold, stranger_window_minutes, retention_days FROM access_settings
            WHERE community_id = \(community.uuid)
            """, logger: logger)
        for try await (threshold, window, retention) in rows.decode((Int32, Int32, Int32).self) {
            return Settings(
                strangerThreshold: Int(clamping: threshold), strangerWindowMinutes: Int(clamping: window),
                retentionDays: Int(clamping: retention))
        }
        return .defaults
    }

    public func setSettings(_ settings: Settings, community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws {
        try await Scope.requireExists(community, on: connection, logger: logger)
        let threshold = Int32(clamping: settings.strangerThreshold)
        let window = Int32(clamping: settings.strangerWindowMinutes)
        let retention = Int32(clamping: settings.retentionDays)
        try await connection.run(
            """
            INSERT INTO access_settings (community_id, stranger_threshold, stranger_window_minutes, retention_days)
            VALUES (\(community.uuid), \(threshold), \(window), \(retention))
            ON CONFLICT (community_id) DO UPDATE SET stranger_threshold = EXCLUDED.stranger_threshold,
                stranger_window_minutes = EXCLUDED.stranger_window_minutes, retention_days = EXCLUDED.retention_days
            """, logger: logger)
    }

    // MARK: QR codes

    /// The community's QR signing key, made on first use.
    public func qrKey(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws
        -> Curve25519.Signing.PrivateKey
    {
        let fresh = Curve25519.Signing.PrivateKey()
        let rows = try await connection.run(
            """
            WITH ins AS (
                INSERT INTO access_qr_keys (community_id, private_key, public_key)
                VALUES (\(community.uuid), \(ByteBuffer(bytes: fresh.rawRepresentation)), \(ByteBuffer(bytes: fresh.publicKey.rawRepresentation)))
                ON CONFLICT (community_id) DO NOTHING RETURNING private_key
            )
            SELECT private_key FROM ins UNION ALL SELECT private_key FROM access_qr_keys WHERE community_id = \(community.uuid)
            """, logger: logger)
        for try await key in rows.decode(ByteBuffer.self) {
            return try Curve25519.Signing.PrivateKey(rawRepresentation: Array(buffer: key))
        }
        // Another transaction made the key while this statement ran: its snapshot could not see
        // it, the next statement's can.
        let made = try await connection.run(
            "SELECT private_key FROM access_qr_keys WHERE community_id = \(community.uuid)", logger: logger)
        for try await key in made.decode(ByteBuffer.self) {
            return try Curve25519.Signing.PrivateKey(rawRepresentation: Array(buffer: key))
        }
        throw LinliError(.unavailable, "the community's QR key is being made; retry")
    }

    /// How long a QR code is valid.
    public static let qrLifetime: TimeInterval = 300

    /// A signed QR code for `holder` (a user) opening the community's gates and `buildings`' doors
    /// (staff: every door, written as "*").
    public static func qrCode(
        community: CommunityID, holder: UserID, buildings: [BuildingID]?, expires: Date, key: Curve25519.Signing.PrivateKey
    ) throws -> String {
        let expiresMs = Int64(clamping: Int((expires.timeIntervalSince1970 * 1000).rounded(.down)))
        let scope = buildings.map { $0.map(\.description).joined(separator: ",") } ?? "*"
        let payload = Array("\(community)|\(holder)|\(scope)|\(expiresMs)".utf8)
        let signature = try key.signature(for: payload)
        return "LQ1." + base64URL(payload) + "." + base64URL(Array(signature))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

let uuidZero: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
