/// A tenant as the registry knows it, with its validated schema and role name.
public struct TenantRef: Sendable, Equatable {
    /// The tenant's identifier.
    public let id: TenantID
    /// The tenant's slug, e.g. `demo`.
    public let slug: String
    /// The schema and role name, `t_<slug>`. Safe to interpolate into SQL: validated on creation.
    public let schema: String
    /// Whether the tenant may be used.
    public let isActive: Bool

    /// Creates a reference; fails unless `slug` is a valid tenant slug.
    public init(id: TenantID, slug: String, isActive: Bool) throws(LinliError) {
        guard TenantRef.isValidSlug(slug) else { throw .invalid("slug", "must be 1 to 40 of a-z, 0-9 and _") }
        self.id = id
        self.slug = slug
        self.schema = "t_" + slug
        self.isActive = isActive
    }

    /// Whether `slug` matches `^[a-z0-9_]{1,40}$`: the only way a name reaches SQL.
    public static func isValidSlug(_ slug: String) -> Bool {
        (1...40).contains(slug.utf8.count)
            && slug.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }
}
