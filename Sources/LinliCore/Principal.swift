/// Who is calling: a tenant user, a partner app's API key, or a platform operator.
public struct Principal: Sendable, Equatable {
    /// The tenant the principal belongs to; nil for platform operators.
    public var tenantID: TenantID?
    /// The user or API key behind the call.
    public var subjectID: UserID
    /// A name to show.
    public var displayName: String
    /// The principal's role.
    public var role: Role
    /// Communities the principal may act in (ignored for operators).
    public var communityIDs: [CommunityID]
    /// For residents: the buildings they live in.
    public var buildingIDs: [BuildingID]

    /// Creates a principal.
    public init(
        tenantID: TenantID?, subjectID: UserID, displayName: String, role: Role,
        communityIDs: [CommunityID], buildingIDs: [BuildingID]
    ) {
        self.tenantID = tenantID
        self.subjectID = subjectID
        self.displayName = displayName
        self.role = role
        self.communityIDs = communityIDs
        self.buildingIDs = buildingIDs
    }

    /// Whether the principal may act in `community`.
    public func canAct(in community: CommunityID) -> Bool {
        role == .operator || communityIDs.contains(community)
    }

    /// Throws `permissionDenied` unless the principal may act in `community`.
    public func requireScope(_ community: CommunityID) throws(LinliError) {
        guard canAct(in: community) else {
            throw LinliError(.permissionDenied, "community_id: outside your communities", field: "community_id")
        }
    }
}
