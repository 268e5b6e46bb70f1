import Foundation
import SwiftProtobuf

/// Domain enums to and from their protobuf twins. A twin lists the same cases in the same
/// order after its `…_UNSPECIFIED = 0`, so the mapping is by position and cannot drift silently:
/// a missing case decodes as an error naming the field.
public enum ProtoEnum {
    public static func encode<E: CaseIterable & Equatable, P: SwiftProtobuf.Enum>(_ value: E) -> P {
        let index = Array(E.allCases).firstIndex(of: value) ?? -1
        return P(rawValue: index + 1) ?? P()
    }

    public static func decode<E: CaseIterable & RawRepresentable, P: SwiftProtobuf.Enum>(_ value: P, _: E.Type, field: String)
        throws(LinliError) -> E where E.RawValue == String
    {
        let cases = Array(E.allCases)
        guard value.rawValue >= 1, value.rawValue <= cases.count else {
            throw .invalid(field, "must be one of \(cases.map(\.rawValue).joined(separator: ", "))")
        }
        return cases[value.rawValue - 1]
    }
}

extension Input {
    /// Timestamps a request may carry lie in [2000-01-01T00:00:00Z, 2100-01-01T00:00:00Z).
    public static let instants: Range<Int64> = 946_684_800..<4_102_444_800

    /// A request's timestamp as a date, refused (naming `field`) outside `instants`.
    public static func instant(_ t: Google_Protobuf_Timestamp, field: String) throws(LinliError) -> Date {
        guard instants.contains(t.seconds) else { throw .invalid(field, "must lie between 2000 and 2100") }
        return t.date
    }
}
