import Foundation
import LinliCore
import Testing

@testable import LinliParking

@Suite("Parking fees, coupons, the gate ladder and plates (pure)")
struct ParkingRuleTests {
    /// Research note A, scenario 1: free 15 min (threshold), first 60 min 500 fen, then 200 per
    /// started 30 min, cap 2000 per 24 h from entry.
    static let table = ParkingFeeRule(
        kind: .standard, freeMinutes: 15, freeMode: .threshold,
        tariff: .init(firstBlockMinutes: 60, firstBlockFen: 500, stepMinutes: 30, stepFen: 200, capFen: 2_000))

    /// 2026-11-29 00:00 in Asia/Shanghai.
    static let midnight = Date(timeIntervalSince1970: 1_795_881_600)

    static func at(_ hour: Int, _ minute: Int, day: Int = 0) -> Date {
        midnight.addingTimeInterval(TimeInterval(day * 86_400 + hour * 3_600 + minute * 60))
    }

    @Test(
        "A-1 the fee table: threshold free minutes, first block, steps, cap per 24 h from entry",
        arguments: [(15, 0), (16, 500), (60, 500), (61, 700), (150, 1_100), (600, 2_000), (1_440, 2_000), (1_441, 2_500)])
    func feeTable(minutes: Int, fen: Int64) {
        let entry = Self.at(9, 0)
        #expect(ParkingFee.fee(Self.table, entry: entry, exit: entry.addingTimeInterval(TimeInterval(minutes * 60))) == fen)
    }

    @Test("a started minute counts in full; deduction mode takes the free minutes off first")
    func minutesAndDeduction() {
        let entry = Self.at(9, 0)
        #expect(ParkingFee.fee(Self.table, entry: entry, exit: entry.addingTimeInterval(60 * 60 + 1)) == 700)
        var deduction = Self.table
        deduction.freeMode = .deduction
        // 76 minutes less 15 free = 61 → 700; 75 − 15 = 60 → 500; 15 → 0.
        #expect(ParkingFee.fee(deduction, entry: entry, exit: entry.addingTimeInterval(76 * 60)) == 700)
        #expect(ParkingFee.fee(deduction, entry: entry, exit: entry.addingTimeInterval(75 * 60)) == 500)
        #expect(ParkingFee.fee(deduction, entry: entry, exit: entry.addingTimeInterval(15 * 60)) == 0)
    }

    @Test("calendar-day caps: a stay over local midnight is capped per local day, each day from its first block")
    func calendarDay() {
        var rule = Self.table
        rule.capMode = .calendarDay
        // 22:00 → 02:00: 120 min on day one (500 + 2×200 = 900), 120 min on day two (900).
        #expect(ParkingFee.fee(rule, entry: Self.at(22, 0), exit: Self.at(2, 0, day: 1)) == 1_800)
        // Rolling 24 h prices the same 240 minutes as one window: 500 + 6×200 = 1700.
        #expect(ParkingFee.fee(Self.table, entry: Self.at(22, 0), exit: Self.at(2, 0, day: 1)) == 1_700)
    }

    /// Day 08:00–19:00: 2元 for the first hour, then 1元 per hour in half-hour steps; night: 2元
    /// per started 4 h (the research note's day/night tariff).
    static let dayNight = ParkingFeeRule(
        kind: .dayNight, tariff: .init(firstBlockMinutes: 60, firstBlockFen: 200, stepMinutes: 30, stepFen: 50, capFen: 0),
        night: .init(firstBlockMinutes: 240, firstBlockFen: 200, stepMinutes: 240, stepFen: 200, capFen: 500))

    @Test("A-4 day/night: 18:30 to 21:00 is 200 (day, first hour started) + 200 (one night block) = 400")
    func dayNightCase() {
        #expect(ParkingFee.fee(Self.dayNight, entry: Self.at(18, 30), exit: Self.at(21, 0)) == 400)
        // A whole night 19:00 → 08:00 is 13 h: 4 blocks = 800, capped at 500.
        #expect(ParkingFee.fee(Self.dayNight, entry: Self.at(19, 0), exit: Self.at(8, 0, day: 1)) == 500)
        // 07:30 → 09:00: night 30 min (200) + day 60 min (200).
        #expect(ParkingFee.fee(Self.dayNight, entry: Self.at(7, 30), exit: Self.at(9, 0)) == 400)
    }

    @Test("per entry: a fixed price per started 24 h")
    func perEntry() {
        let rule = ParkingFeeRule(
            kind: .perEntry, freeMinutes: 30, tariff: .init(firstBlockMinutes: 0, firstBlockFen: 0, stepMinutes: 0, stepFen: 0, capFen: 0),
            perEntryFen: 500)
        #expect(ParkingFee.fee(rule, entry: Self.at(9, 0), exit: Self.at(9, 30)) == 0)
        #expect(ParkingFee.fee(rule, entry: Self.at(9, 0), exit: Self.at(9, 31)) == 500)
        #expect(ParkingFee.fee(rule, entry: Self.at(9, 0), exit: Self.at(9, 1, day: 1)) == 1_000)
    }

    @Test("a rule that cannot price names its field")
    func ruleProblems() {
        var bad = Self.table
        bad.freeMinutes = 5_000
        #expect(bad.problem?.field == "free_minutes")
        bad = Self.table
        bad.tariff.stepMinutes = 0
        #expect(bad.problem?.field == "tariff.step_minutes")
        var night = Self.dayNight
        night.night = nil
        #expect(night.problem?.field == "night")
        #expect(Self.table.problem == nil && Self.dayNight.problem == nil)
    }

    @Test("A-3 coupon order: time first, then money, then discount; each takes what it takes, an idle coupon stays unused")
    func couponStack() {
        let entry = Self.at(9, 0)
        let exit = entry.addingTimeInterval(300 * 60)  // 300 min: 500 + 8×200 = 2100 → cap 2000
        let time = UUID(), money = UUID(), discount = UUID(), spare = UUID()
        let quote = ParkingFee.quote(
            Self.table, entry: entry, exit: exit,
            coupons: [
                .init(id: discount, kind: .discount, value: 80), .init(id: money, kind: .money, value: 500),
                .init(id: time, kind: .time, value: 60), .init(id: spare, kind: .money, value: 5_000),
            ])
        // 2000; 60 min off → 240 min = 500 + 6×200 = 1700; − 500 = 1200; the spare money coupon
        // takes the remaining 1200 → 0; the discount then has nothing to take.
        #expect(quote.grossFen == 2_000)
        #expect(quote.used.map(\.id) == [time, money, spare])
        #expect(quote.used.map(\.offFen) == [300, 500, 1_200])
        #expect(quote.dueFen == 0)
        let three = ParkingFee.quote(
            Self.table, entry: entry, exit: exit,
            coupons: [
                .init(id: time, kind: .time, value: 60), .init(id: money, kind: .money, value: 500), .init(id: discount, kind: .discount, value: 80),
            ])
        // 1700 − 500 = 1200 × 0.8 = 960.
        #expect(three.dueFen == 960)
        #expect(three.used.map(\.offFen) == [300, 500, 240])
        let free = ParkingFee.quote(Self.table, entry: entry, exit: exit, coupons: [.init(id: spare, kind: .free, value: 0)])
        #expect(free.dueFen == 0 && free.used.map(\.offFen) == [2_000])
        #expect(
            ParkingFee.quote(Self.table, entry: entry, exit: entry.addingTimeInterval(600), coupons: [.init(id: money, kind: .money, value: 100)])
                .used.isEmpty)
    }

    func facts(_ direction: GateDecision.Direction, _ time: Date) -> GateDecision.Facts {
        GateDecision.Facts(direction: direction, at: time, plate: "沪A12345", rule: Self.table)
    }

    @Test("A-4 ladder at entry: black wins over a reservation, white opens, the monthly warning, a closed lane, re-entry")
    func entryLadder() {
        let now = Self.at(9, 0)
        var f = facts(.entry, now)
        f.blacklisted = true
        f.visitorFreeMinutes = 120
        #expect(GateDecision.decide(f).open == false)
        #expect(GateDecision.decide(f).reason == .blacklisted)
        f = facts(.entry, now)
        f.whitelisted = true
        #expect(GateDecision.decide(f).reason == .whitelisted)
        f = facts(.entry, now)
        f.permit = .init(kind: .monthly, validFrom: now.addingTimeInterval(-30 * 86_400), validUntil: now.addingTimeInterval(5 * 86_400 - 60))
        let warned = GateDecision.decide(f)
        #expect(warned.open && warned.reason == .monthlyExpiring && warned.warnDaysLeft == 4)
        #expect(warned.led.contains("月卡剩余4天"))
        f.permit?.validUntil = now.addingTimeInterval(20 * 86_400)
        #expect(GateDecision.decide(f).reason == .monthly && GateDecision.decide(f).warnDaysLeft == nil)
        f.permit?.validUntil = now.addingTimeInterval(-86_400)
        #expect(GateDecision.decide(f).reason == .monthlyExpired && GateDecision.decide(f).carClass == .temp)
        f = facts(.entry, now)
        f.lane.tempCarsEnter = false
        #expect(GateDecision.decide(f).reason == .tempRefused && !GateDecision.decide(f).open)
        f.visitorFreeMinutes = 60
        #expect(GateDecision.decide(f).reason == .visitor && GateDecision.decide(f).open)
        f = facts(.entry, now)
        f.session = .init(enteredAt: now.addingTimeInterval(-600), carClass: .temp)
        #expect(GateDecision.decide(f).reason == .sessionOpen)
        f.lane.reentry = true
        #expect(GateDecision.decide(f).open)
    }

    @Test("a reservation opens in its window even where temporary cars are refused: a visitor's as a visitor, another as temporary; black still wins")
    func reservationRung() {
        let now = Self.at(9, 0)
        var f = facts(.entry, now)
        f.lane.tempCarsEnter = false
        #expect(GateDecision.decide(f).reason == .tempRefused)
        f.reservation = .visitor
        let visitor = GateDecision.decide(f)
        #expect(visitor.open && visitor.reason == .reserved && visitor.carClass == .visitor)
        f.reservation = .nonVisitor
        let other = GateDecision.decide(f)
        #expect(other.open && other.reason == .reserved && other.carClass == .temp)
        // A valid permit serves before the reservation; the black list before everything.
        f.permit = .init(kind: .bought, validFrom: now.addingTimeInterval(-86_400), validUntil: nil)
        #expect(GateDecision.decide(f).reason == .permit)
        f.blacklisted = true
        #expect(GateDecision.decide(f).reason == .blacklisted && !GateDecision.decide(f).open)
    }

    @Test("A-4 a mother space lets one car in as a permit car; the second is a temporary car")
    func motherSpace() {
        let now = Self.at(9, 0)
        var f = facts(.entry, now)
        f.permit = .init(kind: .bought, validFrom: now.addingTimeInterval(-86_400), validUntil: nil, spaceTaken: false)
        #expect(GateDecision.decide(f).carClass == .permit)
        f.permit?.spaceTaken = true
        let second = GateDecision.decide(f)
        #expect(second.open && second.carClass == .temp && second.reason == .temp)
    }

    @Test("A-4 an expired monthly car leaves at the temporary fee counted from its expiry, not stuck at the gate")
    func expiredMonthlyExit() {
        let entered = Self.at(8, 0)
        let expiry = Self.at(12, 0)
        var f = facts(.exit, Self.at(14, 30))
        f.session = .init(enteredAt: entered, carClass: .monthly)
        f.permit = .init(kind: .monthly, validFrom: entered.addingTimeInterval(-30 * 86_400), validUntil: expiry)
        let outcome = GateDecision.decide(f)
        // 150 minutes since the expiry: 1100, not the 390 minutes since entry.
        #expect(!outcome.open && outcome.reason == .payDue && outcome.dueFen == 1_100)
        f.permit?.validUntil = Self.at(18, 0)
        #expect(GateDecision.decide(f).open && GateDecision.decide(f).reason == .permit)
    }

    @Test("A-2 pay window: within 15 minutes of paying the car leaves free; after it only the extra time is charged")
    func payWindow() {
        let entered = Self.at(9, 0)
        let paidAt = entered.addingTimeInterval(150 * 60)  // paid 1100 at 150 minutes
        var f = facts(.exit, paidAt.addingTimeInterval(14 * 60))
        f.session = .init(enteredAt: entered, carClass: .temp, paidFen: 1_100, paidAt: paidAt)
        #expect(GateDecision.decide(f).open && GateDecision.decide(f).reason == .paid)
        f.at = paidAt.addingTimeInterval(16 * 60)
        let late = GateDecision.decide(f)
        // 166 minutes cost 1300; 1100 was paid: 200 more, never the 1100 again.
        #expect(!late.open && late.dueFen == 200)
        f.session?.paidFen = 1_300
        f.session?.paidAt = f.at
        f.at = f.at.addingTimeInterval(5 * 60)
        #expect(GateDecision.decide(f).open)
    }

    @Test("exit ladder: no session, black, white, inner booth, no rule, visitor free minutes")
    func exitLadder() {
        let now = Self.at(12, 0)
        var f = facts(.exit, now)
        #expect(GateDecision.decide(f).reason == .noSession && !GateDecision.decide(f).open)
        f.lane.exitWithoutEntry = true
        #expect(GateDecision.decide(f).open)
        f = facts(.exit, now)
        f.session = .init(enteredAt: now.addingTimeInterval(-3_600 * 3), carClass: .temp)
        f.blacklisted = true
        #expect(GateDecision.decide(f).reason == .blacklisted)
        f.blacklisted = false
        f.lane.charges = false
        #expect(GateDecision.decide(f).reason == .freeLane)
        f.lane.charges = true
        f.rule = nil
        #expect(GateDecision.decide(f).reason == .noFeeRule)
        f.rule = Self.table
        #expect(GateDecision.decide(f).dueFen == 1_300)
        f.session = .init(enteredAt: now.addingTimeInterval(-100 * 60), carClass: .visitor, freeMinutes: 120)
        #expect(GateDecision.decide(f).open)
        f.session?.freeMinutes = 60
        // 40 minutes past the free hour: 500.
        #expect(GateDecision.decide(f).dueFen == 500)
    }

    @Test("plates are normalised one way: NFKC, no spaces or dots, upper case, province first, 7 or 8 characters")
    func plates() {
        #expect(Input.normalizedPlate("粤ｂ·12345 ") == "粤B12345")
        #expect(Input.normalizedPlate(" 沪 ad 12345") == "沪AD12345")
        #expect(Input.normalizedPlate("京A1234学") == "京A1234学")
        #expect(Input.normalizedPlate("AB12345") == nil)
        #expect(Input.normalizedPlate("沪A1234") == nil)
        #expect(Input.normalizedPlate("沪A1234567") == nil)
        #expect(Input.normalizedPlate("沪A12#45") == nil)
        #expect(Input.normalizedPlate(String(repeating: "沪", count: 100)) == nil)
        #expect(throws: LinliError.self) { try Input.plate("", field: "plate") }
    }
}
