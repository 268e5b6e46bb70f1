import Foundation

/// The late fee (滞纳金) rule, one implementation, pure: the item's daily rate in ten-thousandths
/// (5 is 万分之五) of the open principal, for each day after the due day and the grace days —
/// or after the last day a late fee was charged — rounded half up once; all the late fees of a
/// bill together never exceed its amount. Payments settle late fees first, so the principal is
/// the amount less what was settled or waived beyond the late fees charged.
///
/// It is accrued on read (bill lists, `GetMyBilling`, the offset job) and charged to the ledger
/// when a payment or an offset reaches the bill.
enum LateFee {
    struct Bill: Equatable {
        var amountFen: Int64
        var lateFeeChargedFen: Int64
        var settledFen: Int64
        var waivedFen: Int64
        /// Ten-thousandths of the principal a day; 0 charges nothing.
        var per10kDaily: Int
        var graceDays: Int
        var dueOn: String
        /// The last day a late fee was charged, if any.
        var chargedThrough: String?
    }

    /// The late fee accrued by `today` and not yet charged.
    static func due(_ bill: Bill, today: String) -> Int64 {
        guard bill.per10kDaily > 0, let due = Day.number(bill.dueOn), let now = Day.number(today) else { return 0 }
        var from = due + bill.graceDays
        if let through = bill.chargedThrough.flatMap(Day.number) { from = max(from, through) }
        let days = Int64(now - from)
        let principal = bill.amountFen - max(0, bill.settledFen + bill.waivedFen - bill.lateFeeChargedFen)
        guard days > 0, principal > 0 else { return 0 }
        let (product, overflow) = principal.multipliedReportingOverflow(by: Int64(bill.per10kDaily) * days)
        let fee = overflow ? Int64.max : (product / 5_000 + 1) / 2  // ÷ 10,000, half up
        return max(0, min(bill.amountFen - bill.lateFeeChargedFen, fee))
    }
}

/// Calendar days as numbers, for differences between `YYYY-MM-DD` business days.
enum Day {
    /// Days since 1970-01-01 of a proleptic Gregorian `YYYY-MM-DD`; nil when malformed.
    static func number(_ day: String) -> Int? {
        let parts = day.split(separator: "-")
        guard parts.count == 3, let y0 = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), (1...31).contains(d)
        else { return nil }
        // Howard Hinnant's days_from_civil.
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
