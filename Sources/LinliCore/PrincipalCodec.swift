import Foundation

/// A versioned, single-line encoding of a principal, used for session values in Redis and to
/// hand an admitted principal from the admission interceptor to the handler.
public enum PrincipalCodec {
    /// Encodes `principal` with the time its session began.
    public static func encode(_ p: Principal, issuedAt: Date) -> String {
        [
            "v1",
            p.tenantID?.description ?? "",
            p.subjectID.description,
            p.role.name,
            Data(p.displayName.utf8).base64EncodedString(),
            p.communityIDs.map(\.description).joined(separator: ","),
            p.buildingIDs.map(\.description).joined(separator: ","),
            String(Int64(issuedAt.timeIntervalSince1970)),
        ].joined(separator: "|")
    }

    /// Decodes a value made by `encode`; nil for anything else.
    public static func decode(_ value: String) -> (principal: Principal, issuedAt: Date)? {
        let f = value.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard f.count == 8, f[0] == "v1", let subject = UUID(uuidString: f[2]), let role = Role(name: f[3]),
            let nameData = Data(base64Encoded: f[4]), let issued = Int64(f[7])
        else { return nil }
        let tenant = f[1].isEmpty ? nil : UUID(uuidString: f[1]).map(TenantID.init)
        if !f[1].isEmpty && tenant == nil { return nil }
        let communities = f[5].split(separator: ",").compactMap { UUID(uuidString: String($0)) }.map(CommunityID.init)
        let buildings = f[6].split(separator: ",").compactMap { UUID(uuidString: String($0)) }.map(BuildingID.init)
        let principal = Principal(
            tenantID: tenant, subjectID: UserID(subject), displayName: String(decoding: nameData, as: UTF8.self),
            role: role, communityIDs: communities, buildingIDs: buildings)
        return (principal, Date(timeIntervalSince1970: TimeInterval(issued)))
    }
}
