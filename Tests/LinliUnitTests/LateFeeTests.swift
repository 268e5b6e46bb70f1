import Foundation
import Testing

@testable import LinliBilling

@Suite("Late fee: the one rule, without a database")
struct LateFeeTests {
    /// 100.00 元 due 15 January, 万分之五 a day after 10 grace days.
    let bill = LateFee.Bill(
        amountFen: 10_000, lateFeeChargedFen: 0, settledFen: 0, waivedFen: 0, per10kDaily: 5, graceDays: 10, dueOn: "2026-01-15",
        chargedThrough: nil)

    @Test("nothing within the grace days; then the daily rate for each day after them")
    func accrues() {
        #expect(LateFee.due(bill, today: "2026-01-25") == 0)  // the last grace day
        #expect(LateFee.due(bill, today: "2026-01-26") == 5)  // one day: 10,000 × 5 / 10,000
        #expect(LateFee.due(bill, today: "2026-02-04") == 50)
        #expect(LateFee.due(bill, today: "2027-01-25") == 1_825)  // across a year end
    }

    @Test("rounded half up once, on the whole")
    func rounding() {
        var small = bill
        small.amountFen = 1_000  // 0.5 fen a day
        #expect(LateFee.due(small, today: "2026-01-26") == 1)  // 0.5 → 1
        #expect(LateFee.due(small, today: "2026-01-28") == 2)  // 1.5 → 2
        small.amountFen = 999
        #expect(LateFee.due(small, today: "2026-01-26") == 0)  // 0.4995 → 0
    }

    @Test("a partial payment lowers the principal; late fees charged are paid first")
    func principal() {
        var paid = bill
        paid.settledFen = 6_000
        #expect(LateFee.due(paid, today: "2026-02-04") == 20)  // 4,000 open
        paid.lateFeeChargedFen = 50
        paid.settledFen = 6_050  // the 50 late fee first, then 6,000 of the amount
        paid.chargedThrough = "2026-02-04"
        #expect(LateFee.due(paid, today: "2026-02-04") == 0)  // charged through today
        #expect(LateFee.due(paid, today: "2026-02-06") == 4)  // two more days on 4,000
        paid.waivedFen = 4_000
        #expect(LateFee.due(paid, today: "2026-03-01") == 0)  // nothing left open
    }

    @Test("all late fees of a bill together never exceed its amount; no rate, no fee")
    func capped() {
        var heavy = bill
        heavy.per10kDaily = 100
        #expect(LateFee.due(heavy, today: "2027-12-31") == 10_000)
        heavy.lateFeeChargedFen = 9_000
        #expect(LateFee.due(heavy, today: "2027-12-31") == 1_000)
        var free = bill
        free.per10kDaily = 0
        #expect(LateFee.due(free, today: "2027-12-31") == 0)
    }

    @Test("day numbers: leap years, month ends, malformed days")
    func days() throws {
        #expect(Day.number("1970-01-01") == 0)
        #expect(try #require(Day.number("2024-03-01")) - #require(Day.number("2024-02-28")) == 2)
        #expect(try #require(Day.number("2026-03-01")) - #require(Day.number("2026-02-28")) == 1)
        #expect(try #require(Day.number("2027-01-01")) - #require(Day.number("2026-01-01")) == 365)
        #expect(Day.number("2026-13-01") == nil && Day.number("soon") == nil)
        #expect(LateFee.due(bill, today: "soon") == 0)
    }
}
