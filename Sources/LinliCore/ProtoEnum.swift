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

/// Business days: every community runs on China Standard Time today.
public enum BusinessDay {
    public static let timeZone = TimeZone(identifier: "Asia/Shanghai") ?? .current

    /// Midnight today.
    public static func startOfToday(now: Date = Date()) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar.startOfDay(for: now)
    }

    /// `date` as `YYYY-MM-DD`.
    public static func string(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
    }
}
