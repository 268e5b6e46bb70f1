import Foundation

/// Generates time-ordered UUIDv7 identifiers (RFC 9562): 48 bits of Unix milliseconds,
/// then random bits, so that new rows land at the right edge of B-tree indexes.
public enum UUIDv7 {
    /// A new identifier for the current time.
    public static func make(now: Date = Date()) -> UUID {
        let millis = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var rng = SystemRandomNumberGenerator()
        let random = rng.next() as UInt64
        let random2 = rng.next() as UInt64
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - UInt64(i)))) }
        for i in 6..<8 { bytes[i] = UInt8(truncatingIfNeeded: random >> (8 * UInt64(i))) }
        for i in 8..<16 { bytes[i] = UInt8(truncatingIfNeeded: random2 >> (8 * UInt64(i - 8))) }
        bytes[6] = (bytes[6] & 0x0F) | 0x70  // version 7
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
    }
}

/// A UUID tagged with the kind of thing it identifies, so a notice id cannot be passed as a user id.
public struct TypedID<Tag>: Hashable, Sendable, CustomStringConvertible {
    /// The raw identifier.
    public let uuid: UUID
    /// Wraps an existing identifier.
    public init(_ uuid: UUID) { self.uuid = uuid }
    /// A new time-ordered identifier.
    public static func make() -> Self { Self(UUIDv7.make()) }
    public var description: String { uuid.uuidString.lowercased() }
}

/// Tag types for `TypedID`.
public enum IDTag {
    public enum Tenant {}
    public enum Community {}
    public enum Building {}
    public enum User {}
    public enum Notice {}
    public enum ApiKey {}
    public enum WorkOrder {}
    public enum Complaint {}
    public enum HotlineTicket {}
    public enum VisitorPass {}
    public enum ItemRelease {}
    public enum Room {}
    public enum Resident {}
    public enum Residency {}
    public enum ParkingSpace {}
    public enum Pet {}
    public enum PatrolPoint {}
    public enum PatrolRoute {}
    public enum PatrolPlan {}
    public enum PatrolTask {}
    public enum Notification {}
    public enum FeeItem {}
    public enum Bill {}
    public enum Payment {}
    public enum Refund {}
    public enum Device {}
    public enum DeviceCommand {}
    /// Parking rows (lots, permits, sessions, coupons …) named by id in requests.
    public enum Parking {}
    public enum Alarm {}
    /// Points holds and lots.
    public enum Points {}
    /// Commerce rows (merchants, categories, goods, SKUs, orders, payments, reviews) named by id in requests.
    public enum Commerce {}
}

/// A tenant's identifier.
public typealias TenantID = TypedID<IDTag.Tenant>
/// A community's identifier.
public typealias CommunityID = TypedID<IDTag.Community>
/// A building's identifier.
public typealias BuildingID = TypedID<IDTag.Building>
/// A user's identifier (staff, resident, operator).
public typealias UserID = TypedID<IDTag.User>
/// A notice's identifier.
public typealias NoticeID = TypedID<IDTag.Notice>
/// An API key's identifier.
public typealias ApiKeyID = TypedID<IDTag.ApiKey>
/// A work order's identifier.
public typealias WorkOrderID = TypedID<IDTag.WorkOrder>
/// A room's identifier.
public typealias RoomID = TypedID<IDTag.Room>
/// A resident record's identifier (a person living in the community, with or without an app account).
public typealias ResidentID = TypedID<IDTag.Resident>
/// A device's identifier (door controller, face terminal, meter, ...).
public typealias DeviceID = TypedID<IDTag.Device>
/// A device command's identifier, also its correlation id on the wire.
public typealias DeviceCommandID = TypedID<IDTag.DeviceCommand>
