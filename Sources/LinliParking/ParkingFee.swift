import Foundation

/// A temporary car's parking fee as one pure function of (entry, exit, rule version, coupons) →
/// fen. The rule is stored as JSON in `parking_fee_rules.spec`, one row per version; a session
/// keeps the version it was priced under, so changing a tariff never reprices a stay already
/// paid. The choices the research note asked for, stated once:
///
/// - **Minutes** are whole started minutes of the stay: 60 min 1 s is 61 minutes.
/// - **Free minutes** are a threshold by default (a 16-minute stay pays for all 16) or, with
///   `freeMode = deduction`, subtracted first (a 16-minute stay pays for 1).
/// - **Caps** apply per window: `rolling24h` windows of 24 h counted from entry, or
///   `calendarDay` windows of the community's local days. Each window is priced afresh from the
///   first block (a second day starts at the first-hour price again, as the tariffs posted at
///   Chinese lots read: "首小时5元…24小时封顶20元"), the free minutes only once, at entry.
/// - **Day/night** splits the stay at the local day and night start times; each contiguous
///   segment is priced by its period's tariff from its first block and capped by that period's
///   cap; the free minutes again only once.
/// - **Per entry** charges a fixed price per started 24 h.
public struct ParkingFeeRule: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case standard, dayNight = "day_night", perEntry = "per_entry" }
    public enum FreeMode: String, Codable, Sendable, CaseIterable { case threshold, deduction }
    public enum CapMode: String, Codable, Sendable, CaseIterable { case rolling24h = "rolling_24h", calendarDay = "calendar_day" }

    /// One period's tariff: the first block, then a price per started step, capped.
    public struct Tariff: Codable, Sendable, Equatable {
        public var firstBlockMinutes: Int
        public var firstBlockFen: Int64
        public var stepMinutes: Int
        public var stepFen: Int64
        /// 0: no cap.
        public var capFen: Int64

        public init(firstBlockMinutes: Int, firstBlockFen: Int64, stepMinutes: Int, stepFen: Int64, capFen: Int64) {
            self.firstBlockMinutes = firstBlockMinutes
            self.firstBlockFen = firstBlockFen
            self.stepMinutes = stepMinutes
            self.stepFen = stepFen
            self.capFen = capFen
        }

        /// The price of `minutes` (> 0) from this tariff's first block, capped.
        func price(_ minutes: Int) -> Int64 {
            guard minutes > 0 else { return 0 }
            var fen = firstBlockFen
            if minutes > firstBlockMinutes, stepMinutes > 0 {
                let steps = Int64(clamping: (minutes - firstBlockMinutes + stepMinutes - 1) / stepMinutes)
                let (more, overflow) = steps.multipliedReportingOverflow(by: stepFen)
                fen = overflow ? Int64.max : fen.addingReportingOverflow(more).overflow ? Int64.max : fen + more
            }
            return capFen > 0 ? min(fen, capFen) : fen
        }
    }

    public var kind: Kind
    public var freeMinutes: Int
    public var freeMode: FreeMode
    /// `standard`: the tariff; `dayNight`: the day tariff.
    public var tariff: Tariff
    public var capMode: CapMode
    /// `dayNight`: the night tariff and when day and night begin, minutes after local midnight.
    public var night: Tariff?
    public var dayStartMinute: Int
    public var nightStartMinute: Int
    /// `perEntry`: the price per started 24 h.
    public var perEntryFen: Int64

    public init(
        kind: Kind, freeMinutes: Int = 0, freeMode: FreeMode = .threshold, tariff: Tariff, capMode: CapMode = .rolling24h,
        night: Tariff? = nil, dayStartMinute: Int = 480, nightStartMinute: Int = 1_140, perEntryFen: Int64 = 0
    ) {
        self.kind = kind
        self.freeMinutes = freeMinutes
        self.freeMode = freeMode
        self.tariff = tariff
        self.capMode = capMode
        self.night = night
        self.dayStartMinute = dayStartMinute
        self.nightStartMinute = nightStartMinute
        self.perEntryFen = perEntryFen
    }

    /// What is wrong with the rule, for the field that is; nil when it can price stays.
    public var problem: (field: String, message: String)? {
        let maxFen: Int64 = 10_000_000
        func check(_ t: Tariff, _ name: String) -> (String, String)? {
            guard (0...10_080).contains(t.firstBlockMinutes) else { return ("\(name).first_block_minutes", "must be 0 to 10080") }
            guard (0...10_080).contains(t.stepMinutes) else { return ("\(name).step_minutes", "must be 0 to 10080") }
            for (field, fen) in [("first_block_fen", t.firstBlockFen), ("step_fen", t.stepFen), ("cap_fen", t.capFen)]
            where !(0...maxFen).contains(fen) {
                return ("\(name).\(field)", "must be 0 to \(maxFen)")
            }
            if t.stepFen > 0, t.stepMinutes == 0 { return ("\(name).step_minutes", "a step price needs a step length") }
            return nil
        }
        guard (0...1_440).contains(freeMinutes) else { return ("free_minutes", "must be 0 to 1440") }
        if let bad = check(tariff, "tariff") { return bad }
        switch kind {
        case .standard: return nil
        case .dayNight:
            guard let night else { return ("night", "a day/night rule needs the night tariff") }
            if let bad = check(night, "night") { return bad }
            guard (0..<1_440).contains(dayStartMinute), (0..<1_440).contains(nightStartMinute), dayStartMinute != nightStartMinute else {
                return ("day_start_minute", "day and night must start at different minutes of the day (0 to 1439)")
            }
            return nil
        case .perEntry:
            guard (1...maxFen).contains(perEntryFen) else { return ("per_entry_fen", "must be 1 to \(maxFen)") }
            return nil
        }
    }
}

public enum ParkingFee {
    /// A coupon as the fee function applies it.
    public struct Coupon: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable { case time, money, discount, free }
        public var id: UUID
        public var kind: Kind
        /// time: minutes; money: fen; discount: the percent still paid (80 = 20% off); free: 0.
        public var value: Int64

        public init(id: UUID, kind: Kind, value: Int64) {
            self.id = id
            self.kind = kind
            self.value = value
        }
    }

    /// The outcome: what is due, what the stay cost before coupons, and the coupons used with
    /// the fen each took off (a coupon that took nothing off is not used and stays unused).
    public struct Quote: Sendable, Equatable {
        public var dueFen: Int64
        public var grossFen: Int64
        public var minutes: Int
        public var used: [(id: UUID, offFen: Int64)]

        public static func == (a: Quote, b: Quote) -> Bool {
            a.dueFen == b.dueFen && a.grossFen == b.grossFen && a.minutes == b.minutes
                && a.used.map(\.id) == b.used.map(\.id) && a.used.map(\.offFen) == b.used.map(\.offFen)
        }
    }

    /// Whole started minutes from `from` to `to` (0 when `to` is not later).
    public static func minutes(from: Date, to: Date) -> Int {
        let seconds = to.timeIntervalSince(from)
        guard seconds > 0 else { return 0 }
        return Int(exactly: min((seconds / 60).rounded(.up), 1e15)) ?? Int.max
    }

    /// The fee for a stay from `entry` to `exit`, before coupons. `utcOffsetSeconds` places the
    /// community's local day (UTC+8 is 28,800; the store reads it from the community's time_zone).
    public static func fee(_ rule: ParkingFeeRule, entry: Date, exit: Date, utcOffsetSeconds: Int = 28_800) -> Int64 {
        var minutes = Self.minutes(from: entry, to: exit)
        guard minutes > rule.freeMinutes else { return 0 }
        var start = entry
        if rule.freeMode == .deduction {
            minutes -= rule.freeMinutes
            start = entry.addingTimeInterval(TimeInterval(rule.freeMinutes * 60))
        }
        let end = start.addingTimeInterval(TimeInterval(minutes) * 60)
        switch rule.kind {
        case .perEntry:
            return rule.perEntryFen.multipliedReportingOverflow(by: Int64(clamping: (minutes + 1_439) / 1_440)).partialValue
        case .standard:
            var total: Int64 = 0
            for (from, to) in windows(start, end, rule.capMode, utcOffsetSeconds) {
                total = total.addingReportingOverflow(rule.tariff.price(Self.minutes(from: from, to: to))).partialValue
            }
            return total
        case .dayNight:
            let night = rule.night ?? rule.tariff
            var total: Int64 = 0
            for (from, to, isNight) in dayNightSegments(start, end, rule, utcOffsetSeconds) {
                let price = (isNight ? night : rule.tariff).price(Self.minutes(from: from, to: to))
                total = total.addingReportingOverflow(price).partialValue
            }
            return total
        }
    }

    /// The fee with coupons, applied in one stated order: time coupons first (each moves the
    /// start of the stay later by its minutes; a free coupon makes the stay free), then money
    /// coupons (floor 0), then discount coupons (each keeps `value`% of what is left, rounded
    /// down: in the driver's favour). Within a kind, in the order given (the store passes them
    /// soonest-expiring first). A coupon that takes nothing off is left unused.
    public static func quote(
        _ rule: ParkingFeeRule, entry: Date, exit: Date, coupons: [Coupon], utcOffsetSeconds: Int = 28_800
    ) -> Quote {
        let gross = fee(rule, entry: entry, exit: exit, utcOffsetSeconds: utcOffsetSeconds)
        let minutes = Self.minutes(from: entry, to: exit)
        var used: [(id: UUID, offFen: Int64)] = []
        var due = gross
        guard gross > 0 else { return Quote(dueFen: 0, grossFen: 0, minutes: minutes, used: []) }
        if let free = coupons.first(where: { $0.kind == .free }) {
            return Quote(dueFen: 0, grossFen: gross, minutes: minutes, used: [(free.id, gross)])
        }
        var start = entry
        for coupon in coupons where coupon.kind == .time && coupon.value > 0 && due > 0 {
            start = start.addingTimeInterval(TimeInterval(min(coupon.value, 100_000)) * 60)
            let after = start >= exit ? 0 : fee(rule, entry: start, exit: exit, utcOffsetSeconds: utcOffsetSeconds)
            if after < due {
                used.append((coupon.id, due - after))
                due = after
            }
        }
        for coupon in coupons where coupon.kind == .money && coupon.value > 0 && due > 0 {
            let off = min(due, coupon.value)
            used.append((coupon.id, off))
            due -= off
        }
        for coupon in coupons where coupon.kind == .discount && (0..<100).contains(coupon.value) && due > 0 {
            let after = due * coupon.value / 100
            used.append((coupon.id, due - after))
            due = after
        }
        return Quote(dueFen: due, grossFen: gross, minutes: minutes, used: used)
    }

    /// [start, end) cut into cap windows.
    static func windows(_ start: Date, _ end: Date, _ mode: ParkingFeeRule.CapMode, _ offset: Int) -> [(Date, Date)] {
        var result: [(Date, Date)] = []
        var from = start
        while from < end, result.count < 10_000 {
            let next: Date
            switch mode {
            case .rolling24h: next = from.addingTimeInterval(86_400)
            case .calendarDay:
                let local = (Int64(exactly: from.timeIntervalSince1970.rounded(.down)) ?? 0) + Int64(clamping: offset)
                let midnight = (local / 86_400 + (local % 86_400 < 0 ? 0 : 1)) * 86_400 - Int64(clamping: offset)
                next = Date(timeIntervalSince1970: TimeInterval(midnight))
            }
            result.append((from, min(next, end)))
            from = next
        }
        return result
    }

    /// [start, end) cut at the local day and night start times, each piece tagged night or day.
    static func dayNightSegments(_ start: Date, _ end: Date, _ rule: ParkingFeeRule, _ offset: Int) -> [(Date, Date, Bool)] {
        var result: [(Date, Date, Bool)] = []
        var from = start
        while from < end, result.count < 10_000 {
            let local = (Int64(exactly: from.timeIntervalSince1970.rounded(.down)) ?? 0) + Int64(clamping: offset)
            let dayStart = local - ((local % 86_400) + 86_400) % 86_400
            let minute = Int(clamping: (local - dayStart) / 60)
            let isNight =
                !(rule.dayStartMinute < rule.nightStartMinute
                ? (rule.dayStartMinute..<rule.nightStartMinute).contains(minute)
                : !(rule.nightStartMinute..<rule.dayStartMinute).contains(minute))
            // The next boundary after `from`: the day start or night start today, or tomorrow's.
            let candidates = [rule.dayStartMinute, rule.nightStartMinute, rule.dayStartMinute + 1_440, rule.nightStartMinute + 1_440]
                .map { dayStart + Int64(clamping: $0) * 60 }
                .filter { $0 > local }
            let boundary = Date(timeIntervalSince1970: TimeInterval((candidates.min() ?? local + 86_400) - Int64(clamping: offset)))
            let to = min(boundary, end)
            result.append((from, to, isNight))
            from = to
        }
        return result
    }
}
