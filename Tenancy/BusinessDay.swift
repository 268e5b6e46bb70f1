import Foundation
import LinliCore
import Logging
import PostgresNIO

/// "What day is it in community C" and "when does day D start in C": the one owner of both.
///
/// Every community has its own `time_zone` (a community in Ürümqi runs on `Asia/Urumqi`); SQL
/// asks `community_today(c)`, `community_day_start(c, d)` or, over many communities,
/// `local_today(c.time_zone)` (migration 0017). Swift code asks a `BusinessDay` loaded for the
/// community. No other place names a time zone.
public struct BusinessDay: Sendable, Equatable {
    public let timeZone: TimeZone
    /// The zone of a community created without one: China Standard Time.
    public static let defaultTimeZone = "Asia/Shanghai"

    public init(timeZone: TimeZone) { self.timeZone = timeZone }

    /// The calendar of `community`, from its `time_zone`.
    public static func of(_ community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> BusinessDay {
        let rows = try await connection.run("SELECT time_zone FROM communities WHERE id = \(community.uuid)", logger: logger)
        for try await zone in rows.decode(String.self) {
            guard let timeZone = TimeZone(identifier: zone) else { throw LinliError(.internal, "community time zone \(zone) is unknown") }
            return BusinessDay(timeZone: timeZone)
        }
        throw LinliError.notFound("community")
    }

    private var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }

    /// The local day of `instant`, `YYYY-MM-DD`.
    public func day(of instant: Date) -> String {
        let c = calendar.dateComponents([.year, .month, .day], from: instant)
        return String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
    }

    /// Today, `YYYY-MM-DD`.
    public func today(now: Date = Date()) -> String { day(of: now) }

    /// The instant local `day` (`YYYY-MM-DD`) begins; nil for a malformed day.
    public func start(of day: String) -> Date? {
        let parts = day.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        return calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2]))
    }

    /// The instant today began.
    public func startOfToday(now: Date = Date()) -> Date { calendar.startOfDay(for: now) }

    /// `days` after local `day`.
    public func adding(_ days: Int, to day: String) -> String? {
        guard let start = start(of: day), let later = calendar.date(byAdding: .day, value: days, to: start) else { return nil }
        return self.day(of: later)
    }
}
