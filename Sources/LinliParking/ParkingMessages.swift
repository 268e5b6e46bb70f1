import Foundation
import LinliAPI
import LinliBilling
import LinliCore
import SwiftProtobuf

extension Linli_Parking_V1_Lot {
    init(_ lot: ParkingStore.Lot) {
        self.init()
        id = lot.id.uuidString.lowercased()
        communityID = lot.community.description
        code = lot.code
        name = lot.name
        kind = lot.kind == "underground" ? .underground : .aboveGround
        parentLotID = lot.parent?.uuidString.lowercased() ?? ""
        capacity = Int32(clamping: lot.capacity)
        occupied = Int32(clamping: lot.occupied)
        payWindowMinutes = Int32(clamping: lot.payWindowMinutes)
        visitorFreeMinutes = Int32(clamping: lot.visitorFreeMinutes)
        visitorDailyLimit = Int32(clamping: lot.visitorDailyLimit)
        duplicateReadSeconds = Int32(clamping: lot.duplicateReadSeconds)
        feeRuleVersion = Int32(clamping: lot.ruleVersion)
    }
}

extension Linli_Parking_V1_Lane {
    init(_ lane: ParkingStore.Lane) {
        self.init()
        id = lane.id.uuidString.lowercased()
        lotID = lane.lot.uuidString.lowercased()
        deviceID = lane.device.uuidString.lowercased()
        code = lane.code
        name = lane.name
        direction = lane.direction == "exit" ? .exit : .entry
        tempCarsEnter = lane.tempCarsEnter
        charges = lane.charges
        reentry = lane.reentry
        exitWithoutEntry = lane.exitWithoutEntry
    }
}

extension Linli_Parking_V1_Tariff {
    init(_ t: ParkingFeeRule.Tariff) {
        self.init()
        firstBlockMinutes = Int32(clamping: t.firstBlockMinutes)
        firstBlockFen = t.firstBlockFen
        stepMinutes = Int32(clamping: t.stepMinutes)
        stepFen = t.stepFen
        capFen = t.capFen
    }
}

extension Linli_Parking_V1_FeeRuleVersion {
    init(_ v: ParkingStore.RuleVersion) {
        self.init()
        id = v.id.uuidString.lowercased()
        lotID = v.lot.uuidString.lowercased()
        version = Int32(clamping: v.version)
        name = v.name
        rule = .with {
            $0.kind = ProtoEnum.encode(v.rule.kind)
            $0.freeMinutes = Int32(clamping: v.rule.freeMinutes)
            $0.freeMode = v.rule.freeMode == .deduction ? .deduction : .threshold
            $0.tariff = .init(v.rule.tariff)
            $0.capMode = v.rule.capMode == .calendarDay ? .calendarDay : .rolling24H
            if let night = v.rule.night { $0.night = .init(night) }
            $0.dayStartMinute = Int32(clamping: v.rule.dayStartMinute)
            $0.nightStartMinute = Int32(clamping: v.rule.nightStartMinute)
            $0.perEntryFen = v.rule.perEntryFen
        }
        createdAt = Google_Protobuf_Timestamp(date: v.createdAt)
    }
}

extension Linli_Parking_V1_Permit {
    init(_ p: ParkingStore.Permit) {
        self.init()
        id = p.id.uuidString.lowercased()
        communityID = p.community.description
        lotID = p.lot?.uuidString.lowercased() ?? ""
        plate = p.plate
        kind = ProtoEnum.encode(p.kind)
        spaceID = p.space?.uuidString.lowercased() ?? ""
        residentID = p.resident?.uuidString.lowercased() ?? ""
        validFrom = Google_Protobuf_Timestamp(date: p.validFrom)
        if let until = p.validUntil { validUntil = Google_Protobuf_Timestamp(date: until) }
        monthlyFeeFen = p.monthlyFeeFen
        revoked = p.revoked
    }
}

extension Linli_Parking_V1_Reservation {
    init(_ r: ParkingStore.Reservation, freeMinutes lotFreeMinutes: Int, at time: Date = Date()) {
        self.init()
        id = r.id.uuidString.lowercased()
        lotID = r.lot.uuidString.lowercased()
        plate = r.plate
        kind = ProtoEnum.encode(r.kind)
        state = ProtoEnum.encode(r.state(at: time))
        spaceID = r.space?.uuidString.lowercased() ?? ""
        residentID = r.resident.uuidString.lowercased()
        startsAt = Google_Protobuf_Timestamp(date: r.startsAt)
        endsAt = Google_Protobuf_Timestamp(date: r.endsAt)
        freeMinutes = r.kind == .visitor ? Int32(clamping: lotFreeMinutes) : 0
        sessionID = r.session?.uuidString.lowercased() ?? ""
        if let used = r.usedAt { usedAt = Google_Protobuf_Timestamp(date: used) }
        if let cancelled = r.cancelledAt { cancelledAt = Google_Protobuf_Timestamp(date: cancelled) }
        createdAt = Google_Protobuf_Timestamp(date: r.createdAt)
    }
}

extension Linli_Parking_V1_ListEntry {
    init(_ e: ParkingStore.ListEntry) {
        self.init()
        id = e.id.uuidString.lowercased()
        communityID = e.community.description
        lotID = e.lot?.uuidString.lowercased() ?? ""
        plate = e.plate
        list = e.list == "black" ? .black : .white
        validFrom = Google_Protobuf_Timestamp(date: e.validFrom)
        if let until = e.validUntil { validUntil = Google_Protobuf_Timestamp(date: until) }
        reason = e.reason
        removed = e.removed
    }
}

extension Linli_Parking_V1_Session {
    init(_ s: ParkingStore.Session) {
        self.init()
        id = s.id.uuidString.lowercased()
        lotID = s.lot.uuidString.lowercased()
        plate = s.plate
        carClass = ProtoEnum.encode(s.carClass)
        if let at = s.enteredAt { enteredAt = Google_Protobuf_Timestamp(date: at) }
        if let at = s.exitedAt { exitedAt = Google_Protobuf_Timestamp(date: at) }
        feeRuleVersion = Int32(clamping: s.ruleVersion)
        grossFen = s.grossFen
        paidFen = s.paidFen
        couponOffFen = s.couponOffFen
        if let at = s.paidAt { paidAt = Google_Protobuf_Timestamp(date: at) }
        closeNote = s.closeNote
        open = s.exitedAt == nil
    }
}

extension Linli_Parking_V1_SessionQuote {
    init(_ s: ParkingStore.Session, _ q: ParkingStore.Quote) {
        self.init()
        session = .init(s)
        minutes = Int32(clamping: q.minutes)
        grossFen = q.grossFen
        couponOffFen = q.couponOffFen
        dueFen = q.dueFen
        if let by = q.leaveBy { leaveBy = Google_Protobuf_Timestamp(date: by) }
    }
}

extension Linli_Parking_V1_Payment {
    init(_ p: ParkingStore.Payment) {
        self.init()
        id = p.id.uuidString.lowercased()
        receiptNo = p.receiptNo
        amountFen = p.amountFen
        method = ProtoEnum.encode(p.method)
        refundedFen = p.refundedFen
        paidAt = Google_Protobuf_Timestamp(date: p.paidAt)
        couponFen = p.couponFen
    }
}

extension Linli_Parking_V1_Merchant {
    init(_ m: ParkingStore.Merchant) {
        self.init()
        id = m.id.uuidString.lowercased()
        communityID = m.community.description
        name = m.name
        balanceFen = m.balanceFen
    }
}

extension Linli_Parking_V1_CouponBatch {
    init(_ b: ParkingStore.Batch) {
        self.init()
        id = b.id.uuidString.lowercased()
        merchantID = b.merchant.uuidString.lowercased()
        kind = ProtoEnum.encode(b.kind)
        value = b.value
        priceFen = b.priceFen
        quantity = Int32(clamping: b.quantity)
        issued = Int32(clamping: b.issued)
        validDays = Int32(clamping: b.validDays)
    }
}

extension Linli_Parking_V1_Coupon {
    init(_ c: ParkingStore.Coupon) {
        self.init()
        id = c.id.uuidString.lowercased()
        batchID = c.batch.uuidString.lowercased()
        plate = c.plate
        kind = ProtoEnum.encode(c.kind)
        value = c.value
        status = c.status == "used" ? .used : c.status == "void" ? .void : .unused
        validUntil = Google_Protobuf_Timestamp(date: c.validUntil)
        sessionID = c.session?.uuidString.lowercased() ?? ""
        offFen = c.offFen
    }
}
