import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Tenant users (staff and residents) and platform operators, as stored in PostgreSQL.
public struct UserStore: Sendable {
    private let database: Database
    let hasher: PasswordHasher

    /// Creates a directory.
    public init(database: Database, hasher: PasswordHasher) {
        self.database = database
        self.hasher = hasher
    }

    /// A new tenant user.
    public struct NewUser: Sendable {
        public var username: String
        public var displayName: String
        public var password: String
        public var role: Role
        public var phone: String?
        public var communityIDs: [CommunityID]
        public var buildingIDs: [BuildingID]

        /// Describes a user to create.
        public init(
            username: String, displayName: String, password: String, role: Role, phone: String? = nil,
            communityIDs: [CommunityID], buildingIDs: [BuildingID] = []
        ) {
            self.username = username
            self.displayName = displayName
            self.password = password
            self.role = role
            self.phone = phone
            self.communityIDs = communityIDs
            self.buildingIDs = buildingIDs
        }

        /// Checks every field; the error names the first bad one.
        public func validated() throws(LinliError) -> NewUser {
            var user = self
            user.username = try Input.text(username, field: "username", min: 3, max: 64)
            guard user.username.allSatisfy({ $0.isLetter || $0.isNumber || "._-@".contains($0) }) else {
                throw .invalid("username", "may hold letters, digits and . _ - @ only")
            }
            user.displayName = try Input.text(displayName, field: "display_name", max: 100)
            if password.count < 8 { throw .invalid("password", "must be at least 8 characters") }
            if password.count > 128 { throw .invalid("password", "must be at most 128 characters") }
            if role == .operator || role == .partner { throw .invalid("role", "must be a tenant role") }
            if communityIDs.isEmpty { throw .invalid("community_ids", "at least one community is required") }
            if role == .resident && buildingIDs.isEmpty { throw .invalid("building_ids", "a resident needs a building") }
            if let phone, !phone.isEmpty {
                guard phone.count <= 20, phone.allSatisfy({ $0.isNumber || $0 == "+" || $0 == "-" }) else {
                    throw .invalid("phone", "is not a phone number")
                }
            }
            return user
        }
    }

    /// Creates a user inside the caller's tenant transaction; buildings must be in its communities.
    public func create(_ user: NewUser, on connection: PostgresConnection, logger: Logger) async throws -> UserID {
        let user = try user.validated()
        let id = UserID.make()
        let communityUUIDs = user.communityIDs.map(\.uuid)
        let buildingUUIDs = user.buildingIDs.map(\.uuid)
        let counts = try await connection.run(
            """
            SELECT (SELECT count(*) FROM communities WHERE id = ANY(\(communityUUIDs))),
                   (SELECT count(*) FROM buildings WHERE id = ANY(\(buildingUUIDs)) AND community_id = ANY(\(communityUUIDs))),
                   (SELECT count(*) FROM users WHERE username = \(user.username))
            """, logger: logger)
        for try await (communities, buildings, taken) in counts.decode((Int, Int, Int).self) {
            if communities != communityUUIDs.count { throw LinliError.invalid("community_ids", "unknown community") }
            if buildings != buildingUUIDs.count { throw LinliError.invalid("building_ids", "unknown building, or not in the given communities") }
            if taken > 0 { throw LinliError(.alreadyExists, "username: already taken", field: "username") }
        }
        let hash = try hasher.hash(user.password)
        try await connection.run(
            """
            INSERT INTO users (id, username, display_name, phone, password_hash, role)
            VALUES (\(id.uuid), \(user.username), \(user.displayName), \(user.phone), \(hash), \(user.role.name))
            """, logger: logger)
        try await connection.run(
            """
            INSERT INTO user_communities (user_id, community_id) SELECT \(id.uuid), unnest(\(communityUUIDs)::uuid[])
            """, logger: logger)
        try await connection.run(
            """
            INSERT INTO user_buildings (user_id, building_id) SELECT \(id.uuid), unnest(\(buildingUUIDs)::uuid[])
            """, logger: logger)
        return id
    }

    /// Throws `notFound` unless `user` exists and every community they belong to is one
    /// `principal` may act in: a manager reaches no user of another community.
    public func requireWithin(
        _ user: UserID, of principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        let rows = try await connection.run(
            """
            SELECT ARRAY(SELECT community_id FROM user_communities WHERE user_id = u.id) FROM users u WHERE u.id = \(user.uuid)
            """, logger: logger)
        for try await communities in rows.decode([UUID].self)
        where communities.allSatisfy({ principal.canAct(in: CommunityID($0)) }) {
            return
        }
        throw LinliError.notFound("user")
    }

    /// Disables or re-enables `user`.
    public func setStatus(_ user: UserID, disabled: Bool, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE users SET status = \(disabled ? "disabled" : "active") WHERE id = \(user.uuid)
            """, logger: logger)
    }

    /// Replaces `user`'s communities and buildings; buildings must be in those communities.
    public func setScope(
        _ user: UserID, communities: [CommunityID], buildings: [BuildingID],
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        if communities.isEmpty { throw LinliError.invalid("community_ids", "at least one community is required") }
        let communityUUIDs = communities.map(\.uuid)
        let buildingUUIDs = buildings.map(\.uuid)
        let counts = try await connection.run(
            """
            SELECT (SELECT count(*) FROM communities WHERE id = ANY(\(communityUUIDs))),
                   (SELECT count(*) FROM buildings WHERE id = ANY(\(buildingUUIDs)) AND community_id = ANY(\(communityUUIDs)))
            """, logger: logger)
        for try await (known, inside) in counts.decode((Int, Int).self) {
            if known != communityUUIDs.count { throw LinliError.invalid("community_ids", "unknown community") }
            if inside != buildingUUIDs.count { throw LinliError.invalid("building_ids", "unknown building, or not in the given communities") }
        }
        try await connection.run("DELETE FROM user_communities WHERE user_id = \(user.uuid)", logger: logger)
        try await connection.run("DELETE FROM user_buildings WHERE user_id = \(user.uuid)", logger: logger)
        try await connection.run(
            """
            INSERT INTO user_communities (user_id, community_id) SELECT \(user.uuid), unnest(\(communityUUIDs)::uuid[])
            """, logger: logger)
        try await connection.run(
            """
            INSERT INTO user_buildings (user_id, building_id) SELECT \(user.uuid), unnest(\(buildingUUIDs)::uuid[])
            """, logger: logger)
    }

    /// Checks a tenant user's password; `unauthenticated` for a wrong name or password alike.
    public func authenticate(tenant: TenantRef, username: String, password: String) async throws(LinliError) -> Principal {
        struct Row: Sendable { var id: UUID; var name: String; var hash: String; var role: String; var communities: [UUID]; var buildings: [UUID] }
        let row: Row? = try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                SELECT u.id, u.display_name, u.password_hash, u.role,
                       ARRAY(SELECT community_id FROM user_communities WHERE user_id = u.id ORDER BY community_id),
                       ARRAY(SELECT building_id FROM user_buildings WHERE user_id = u.id ORDER BY building_id)
                FROM users u WHERE u.username = \(username) AND u.status = 'active'
                """, logger: database.logger)
            for try await (id, name, hash, role, communities, buildings) in rows.decode((UUID, String, String, String, [UUID], [UUID]).self) {
                return Row(id: id, name: name, hash: hash, role: role, communities: communities, buildings: buildings)
            }
            return nil
        }
        guard let row, let role = Role(name: row.role) else {
            hasher.burn(password)
            throw Self.badCredentials
        }
        guard hasher.verify(password, against: row.hash) else { throw Self.badCredentials }
        return Principal(
            tenantID: tenant.id, subjectID: UserID(row.id), displayName: row.name, role: role,
            communityIDs: row.communities.map(CommunityID.init), buildingIDs: row.buildings.map(BuildingID.init))
    }

    /// Checks a platform operator's password.
    public func authenticateOperator(username: String, password: String) async throws(LinliError) -> Principal {
        let row: (UUID, String, String)? = try await database.platformTransaction { connection in
            let rows = try await connection.run(
                "SELECT id, display_name, password_hash FROM platform.operators WHERE username = \(username)",
                logger: database.logger)
            for try await row in rows.decode((UUID, String, String).self) { return row }
            return nil
        }
        guard let row else {
            hasher.burn(password)
            throw Self.badCredentials
        }
        guard hasher.verify(password, against: row.2) else { throw Self.badCredentials }
        return Principal(
            tenantID: nil, subjectID: UserID(row.0), displayName: row.1, role: .operator,
            communityIDs: [], buildingIDs: [])
    }

    /// Creates or replaces a platform operator's password.
    public func upsertOperator(username: String, displayName: String, password: String) async throws(LinliError) -> UserID {
        let name = try Input.text(username, field: "username", min: 3, max: 64)
        if password.count < 8 { throw .invalid("password", "must be at least 8 characters") }
        let hash: String
        do { hash = try hasher.hash(password) } catch { throw .internal(error) }
        return try await database.platformTransaction { connection in
            let rows = try await connection.run(
                """
                INSERT INTO platform.operators (id, username, display_name, password_hash)
                VALUES (\(UUIDv7.make()), \(name), \(displayName), \(hash))
                ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, display_name = EXCLUDED.display_name
                RETURNING id
                """, logger: database.logger)
            for try await id in rows.decode(UUID.self) { return UserID(id) }
            throw LinliError(.internal, "operator upsert returned nothing")
        }
    }

    static let badCredentials = LinliError(.unauthenticated, "wrong username or password")
}
