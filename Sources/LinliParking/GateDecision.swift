import Foundation

/// The gate decision at a lane: one pure function of what the store loaded (the read, the
/// lane's flags, the lists, the car's permit, its open session, the fee rule version) → open or
/// refuse, with the lines the lane's LED shows and the sentence its speaker says. The ladder
/// follows HC-IoT's entry and exit engines, with two changes the research note asks for: an
/// expired monthly car leaves at the temporary fee counted from its expiry instead of being
/// stuck at the barrier, and a mother space lets one car in at a time as a permit car (a second
/// car of the same space is a temporary car).
public enum GateDecision {
    public enum Direction: String, Sendable { case entry, exit }

    /// How the car is parked, fixed at entry (the exit reads it from the session).
    public enum CarClass: String, Sendable, CaseIterable { case white, permit, monthly, visitor, temp }

    /// Why the gate opened or not: stored on the session event, shown to staff.
    public enum Reason: String, Sendable {
        case blacklisted, whitelisted, permit, monthly, monthlyExpiring = "monthly_expiring", monthlyExpired = "monthly_expired"
        case visitor, temp, tempRefused = "temp_refused", sessionOpen = "session_open", noSession = "no_session"
        case exitWithoutEntry = "exit_without_entry", freeLane = "free_lane", paid, noFeeRule = "no_fee_rule", payDue = "pay_due"
        case free, reserved
    }

    public struct Lane: Sendable {
        /// Temporary cars may enter here.
        public var tempCarsEnter: Bool
        /// Exits here charge (an inner booth of a nested lot does not).
        public var charges: Bool
        /// A car with an open session may enter again (e.g. an inner lot's entry).
        public var reentry: Bool
        /// A car with no open session may leave (free).
        public var exitWithoutEntry: Bool

        public init(tempCarsEnter: Bool = true, charges: Bool = true, reentry: Bool = false, exitWithoutEntry: Bool = false) {
            self.tempCarsEnter = tempCarsEnter
            self.charges = charges
            self.reentry = reentry
            self.exitWithoutEntry = exitWithoutEntry
        }
    }

    public struct Permit: Sendable {
        public enum Kind: String, Sendable, CaseIterable { case monthly, bought, `internal`, free }
        public var kind: Kind
        public var validFrom: Date
        /// nil: open-ended.
        public var validUntil: Date?
        /// Another car of the permit's space (a mother space's cars) is inside now.
        public var spaceTaken: Bool

        public init(kind: Kind, validFrom: Date, validUntil: Date?, spaceTaken: Bool = false) {
            self.kind = kind
            self.validFrom = validFrom
            self.validUntil = validUntil
            self.spaceTaken = spaceTaken
        }

        func valid(at time: Date) -> Bool { validFrom <= time && (validUntil.map { time < $0 } ?? true) }
    }

    /// The car's open session, as the exit sees it.
    public struct Session: Sendable {
        public var enteredAt: Date
        public var carClass: CarClass
        /// A visitor's free minutes (0 for other classes).
        public var freeMinutes: Int
        /// What was paid and when, last.
        public var paidFen: Int64
        public var couponOffFen: Int64
        public var paidAt: Date?

        public init(enteredAt: Date, carClass: CarClass, freeMinutes: Int = 0, paidFen: Int64 = 0, couponOffFen: Int64 = 0, paidAt: Date? = nil) {
            self.enteredAt = enteredAt
            self.carClass = carClass
            self.freeMinutes = freeMinutes
            self.paidFen = paidFen
            self.couponOffFen = couponOffFen
            self.paidAt = paidAt
        }
    }

    public struct Facts: Sendable {
        public var direction: Direction
        public var at: Date
        public var plate: String
        public var lane: Lane
        public var blacklisted: Bool
        public var whitelisted: Bool
        public var permit: Permit?
        /// A reservation of this plate in this lot whose window (from 30 minutes early) covers `at`.
        public var reservation: ParkingStore.Reservation.Kind?
        /// A visitor registration for this plate covering `at`: its free minutes.
        public var visitorFreeMinutes: Int?
        public var session: Session?
        public var rule: ParkingFeeRule?
        public var coupons: [ParkingFee.Coupon]
        /// After paying, the car may leave within this many minutes at no further charge.
        public var payWindowMinutes: Int
        public var utcOffsetSeconds: Int

        public init(
            direction: Direction, at: Date, plate: String, lane: Lane = Lane(), blacklisted: Bool = false, whitelisted: Bool = false,
            permit: Permit? = nil, reservation: ParkingStore.Reservation.Kind? = nil, visitorFreeMinutes: Int? = nil, session: Session? = nil,
            rule: ParkingFeeRule? = nil,
            coupons: [ParkingFee.Coupon] = [], payWindowMinutes: Int = 15, utcOffsetSeconds: Int = 28_800
        ) {
            self.direction = direction
            self.at = at
            self.plate = plate
            self.lane = lane
            self.blacklisted = blacklisted
            self.whitelisted = whitelisted
            self.permit = permit
            self.reservation = reservation
            self.visitorFreeMinutes = visitorFreeMinutes
            self.session = session
            self.rule = rule
            self.coupons = coupons
            self.payWindowMinutes = payWindowMinutes
            self.utcOffsetSeconds = utcOffsetSeconds
        }
    }

    public struct Outcome: Sendable, Equatable {
        public var open: Bool
        public var reason: Reason
        /// Entry: the class the session is opened with.
        public var carClass: CarClass
        /// Up to four LED lines and the voice prompt.
        public var led: [String]
        public var voice: String
        /// Exit: what is still due (0 when it opens).
        public var dueFen: Int64
        /// Exit: the quote behind `dueFen`, with the coupons it would use.
        public var quote: ParkingFee.Quote?
        /// Entry of a monthly car: days of validity left, when 5 or fewer.
        public var warnDaysLeft: Int?
    }

    /// A monthly card with this many days left or fewer gets the warning.
    public static let warnDays = 5

    public static func decide(_ f: Facts) -> Outcome {
        switch f.direction {
        case .entry: return entry(f)
        case .exit: return exit(f)
        }
    }

    static func entry(_ f: Facts) -> Outcome {
        func open(_ reason: Reason, _ carClass: CarClass, _ line: String, warn: Int? = nil) -> Outcome {
            Outcome(
                open: true, reason: reason, carClass: carClass, led: [f.plate, "欢迎光临", line].filter { !$0.isEmpty }, voice: "\(f.plate)，欢迎光临",
                dueFen: 0, quote: nil, warnDaysLeft: warn)
        }
        func refuse(_ reason: Reason, _ line: String, _ voice: String) -> Outcome {
            Outcome(open: false, reason: reason, carClass: .temp, led: [f.plate, line], voice: voice, dueFen: 0, quote: nil, warnDaysLeft: nil)
        }
        // 1. Black list wins over everything, a reservation or a permit included.
        if f.blacklisted { return refuse(.blacklisted, "禁止通行", "\(f.plate)，禁止通行") }
        // 2. White list.
        if f.whitelisted { return open(.whitelisted, .white, "") }
        // 3. An open session: a second entry only where the lane allows it.
        if f.session != nil, !f.lane.reentry { return refuse(.sessionOpen, "车辆已在场内", "车辆已在场内，请联系岗亭") }
        if let permit = f.permit, !permit.spaceTaken {
            switch permit.kind {
            // 4. Bought, internal and free cars.
            case .bought, .internal, .free:
                if permit.valid(at: f.at) { return open(.permit, .permit, "") }
            // 5–6. Monthly cars: valid (with the warning near the end), or expired (in as temporary).
            case .monthly:
                if permit.valid(at: f.at) {
                    let left = permit.validUntil.map { Int(exactly: ($0.timeIntervalSince(f.at) / 86_400).rounded(.down)) ?? 0 }
                    if let left, left <= warnDays {
                        return open(.monthlyExpiring, .monthly, "月卡剩余\(left)天", warn: left)
                    }
                    return open(.monthly, .monthly, "月卡车")
                }
            }
        }
        // 7. A reservation in its window: in even where temporary cars may not enter, a visitor's
        //    as a visitor (free minutes), another as a temporary car.
        switch f.reservation {
        case .visitor: return open(.reserved, .visitor, "预约访客")
        case .nonVisitor: return open(.reserved, .temp, "预约车辆")
        case nil: break
        }
        // 8. A registered visitor.
        if f.visitorFreeMinutes != nil { return open(.visitor, .visitor, "访客车辆") }
        // 9. Temporary cars where they may not enter.
        if !f.lane.tempCarsEnter { return refuse(.tempRefused, "临时车禁止入场", "临时车辆禁止入场") }
        // 10. A temporary car (an expired monthly card says so).
        if let permit = f.permit, permit.kind == .monthly, let until = permit.validUntil, until <= f.at {
            return open(.monthlyExpired, .temp, "月卡已过期")
        }
        return open(.temp, .temp, "临时车")
    }

    static func exit(_ f: Facts) -> Outcome {
        func open(_ reason: Reason, _ line: String, quote: ParkingFee.Quote? = nil) -> Outcome {
            Outcome(
                open: true, reason: reason, carClass: f.session?.carClass ?? .temp, led: [f.plate, line, "一路顺风"].filter { !$0.isEmpty },
                voice: "\(f.plate)，一路顺风", dueFen: 0, quote: quote, warnDaysLeft: nil)
        }
        func refuse(_ reason: Reason, _ line: String, _ voice: String, due: Int64 = 0, quote: ParkingFee.Quote? = nil) -> Outcome {
            Outcome(
                open: false, reason: reason, carClass: f.session?.carClass ?? .temp, led: [f.plate, line], voice: voice, dueFen: due,
                quote: quote, warnDaysLeft: nil)
        }
        // 1. No open session: only where the lane lets such cars out.
        guard let session = f.session else {
            if f.lane.exitWithoutEntry { return open(.exitWithoutEntry, "") }
            return refuse(.noSession, "无入场记录", "无入场记录，请联系岗亭")
        }
        // 2. Lists.
        if f.blacklisted { return refuse(.blacklisted, "禁止通行", "\(f.plate)，禁止通行") }
        if f.whitelisted || session.carClass == .white { return open(.whitelisted, "") }
        // 3. Permit cars whose permit still holds leave free; an expired monthly car pays from
        //    its expiry.
        var chargeFrom = session.enteredAt
        var expired = false
        if session.carClass == .permit || session.carClass == .monthly {
            if let permit = f.permit, permit.valid(at: f.at) { return open(.permit, "") }
            if let until = f.permit?.validUntil, until > session.enteredAt {
                chargeFrom = until
            } else if f.permit != nil || session.carClass == .permit {
                chargeFrom = session.enteredAt
            }
            expired = true
        }
        // 4. A booth that does not charge.
        if !f.lane.charges { return open(.freeLane, "") }
        // 5. Paid, and leaving within the window.
        if let paidAt = session.paidAt, f.at <= paidAt.addingTimeInterval(TimeInterval(f.payWindowMinutes * 60)) {
            return open(.paid, "已缴费")
        }
        if session.carClass == .visitor {
            chargeFrom = max(chargeFrom, session.enteredAt.addingTimeInterval(TimeInterval(session.freeMinutes * 60)))
        }
        // 6. No rule, no price: staff decide.
        guard let rule = f.rule else { return refuse(.noFeeRule, "未配置收费规则", "请联系岗亭") }
        // 7. The fee since `chargeFrom` with the coupons, less what was paid (and taken off by
        //    coupons) before: only the extra time is charged.
        let quote =
            chargeFrom >= f.at
            ? ParkingFee.Quote(dueFen: 0, grossFen: 0, minutes: 0, used: [])
            : ParkingFee.quote(rule, entry: chargeFrom, exit: f.at, coupons: f.coupons, utcOffsetSeconds: f.utcOffsetSeconds)
        let due = max(0, quote.dueFen - session.paidFen - session.couponOffFen)
        if due == 0 { return open(expired ? .monthlyExpired : .free, quote.grossFen > 0 ? "已缴费" : "", quote: quote) }
        let stay = ParkingFee.minutes(from: session.enteredAt, to: f.at)
        return refuse(
            .payDue, "停车\(stay / 60)小时\(stay % 60)分 请缴费\(yuan(due))元", "请缴费\(yuan(due))元", due: due, quote: quote)
    }

    /// 1234 fen → "12.34".
    public static func yuan(_ fen: Int64) -> String {
        let cents = fen % 100
        return "\(fen / 100).\(cents < 10 ? "0" : "")\(cents)"
    }
}
