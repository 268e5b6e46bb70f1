import Foundation
import Testing

@testable import LinliBilling

@Suite("Payment allocation: the one rule of Pay and the prepaid offset")
struct PaymentAllocationTests {
    static func due(_ n: UInt8, _ fen: Int64, due: String, priority: Int = 100, item: String = "物业费") -> PaymentAllocation.Due {
        PaymentAllocation.Due(
            bill: UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n)), fen: fen, priority: priority, dueOn: due,
            periodStart: String(due.prefix(8)) + "01", itemName: item)
    }

    let january = due(1, 21_033, due: "2026-01-15")
    let februaryGarbage = due(2, 1_000, due: "2026-02-01", priority: 10, item: "垃圾费")
    let february = due(3, 21_033, due: "2026-02-15")

    @Test("oldest due first, item priority keeping due order within a priority, as listed with the rest after")
    func orders() {
        let bills = [february, january, februaryGarbage]
        #expect(PaymentAllocation.ordered(bills, .oldestDueFirst).map(\.bill) == [january, februaryGarbage, february].map(\.bill))
        #expect(PaymentAllocation.ordered(bills, .itemPriority).map(\.bill) == [februaryGarbage, january, february].map(\.bill))
        #expect(
            PaymentAllocation.ordered(bills, .asListed, listed: [february.bill, UUID()]).map(\.bill)
                == [february, january, februaryGarbage].map(\.bill))
    }

    @Test("a short payment settles whole bills in order, then part of the next; nothing is left")
    func partial() {
        let plan = PaymentAllocation.allocate([january, februaryGarbage, february], tenders: [25_000])
        #expect(plan.shares.map(\.fen) == [21_033, 1_000, 2_967])
        #expect(plan.shares.map(\.bill) == [january.bill, februaryGarbage.bill, february.bill])
        #expect(plan.left == [0])
    }

    @Test("tenders are used in their order; an overpayment is left on the last tender")
    func tendersInOrder() {
        let plan = PaymentAllocation.allocate([january, februaryGarbage], tenders: [1_000, 30_000])
        #expect(
            plan.shares == [
                .init(bill: january.bill, tender: 0, fen: 1_000), .init(bill: january.bill, tender: 1, fen: 20_033),
                .init(bill: februaryGarbage.bill, tender: 1, fen: 1_000),
            ])
        #expect(plan.left == [0, 8_967])
    }

    @Test("a tender skips the bills it may not pay (a utilities prepaid account and a property bill)")
    func accepts() {
        let plan = PaymentAllocation.allocate([january, februaryGarbage], tenders: [5_000]) { _, index in index == 1 }
        #expect(plan.shares == [.init(bill: februaryGarbage.bill, tender: 0, fen: 1_000)])
        #expect(plan.left == [4_000])
    }

    @Test("nothing to pay with, nothing to pay: no shares")
    func empty() {
        #expect(PaymentAllocation.allocate([january], tenders: [0]).shares.isEmpty)
        #expect(PaymentAllocation.allocate([], tenders: [500]).left == [500])
    }
}
