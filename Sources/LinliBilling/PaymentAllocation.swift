import Foundation

/// Payment allocation, the one rule used by `Pay` and by the prepaid offset job: open bills in
/// the community's allocation order, each taking from the tenders in their order as far as
/// they reach, a tender skipping the bills it may not pay. Pure: no database, no clock.
enum PaymentAllocation {
    /// An open bill as allocation sees it.
    struct Due: Equatable {
        var bill: UUID
        /// Open amount with the late fee accrued today.
        var fen: Int64
        var priority: Int
        var dueOn: String
        var periodStart: String
        var itemName: String
    }

    /// `fen` of bill `bill` paid from tender number `tender`.
    struct Share: Equatable {
        var bill: UUID
        var tender: Int
        var fen: Int64
    }

    /// The bills in allocation order. The base order is oldest due first (due day, period start,
    /// item name, id); item priority sorts by priority keeping that order within a priority;
    /// as listed follows `listed` (bills not listed last, in the base order).
    static func ordered(_ dues: [Due], _ order: PaymentStore.AllocationOrder, listed: [UUID] = []) -> [Due] {
        let base = dues.sorted {
            ($0.dueOn, $0.periodStart, $0.itemName, $0.bill.sortKey.0, $0.bill.sortKey.1)
                < ($1.dueOn, $1.periodStart, $1.itemName, $1.bill.sortKey.0, $1.bill.sortKey.1)
        }
        switch order {
        case .oldestDueFirst:
            return base
        case .itemPriority:
            return base.enumerated().sorted { ($0.element.priority, $0.offset) < ($1.element.priority, $1.offset) }.map(\.element)
        case .asListed:
            let position = Dictionary(listed.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
            return base.enumerated().sorted { (position[$0.element.bill] ?? .max, $0.offset) < (position[$1.element.bill] ?? .max, $1.offset) }
                .map(\.element)
        }
    }

    /// Settles `dues` in their order from `tenders` (amounts, in their order): each bill takes
    /// from every tender that `accepts` it until the bill is settled or the tenders are spent.
    /// Returns the shares and what is left of each tender.
    static func allocate(_ dues: [Due], tenders: [Int64], accepts: (_ tender: Int, _ due: Int) -> Bool = { _, _ in true })
        -> (shares: [Share], left: [Int64])
    {
        var left = tenders
        var shares: [Share] = []
        for (index, due) in dues.enumerated() {
            var need = due.fen
            for tender in left.indices where need > 0 && left[tender] > 0 && accepts(tender, index) {
                let take = min(need, left[tender])
                left[tender] -= take
                need -= take
                shares.append(Share(bill: due.bill, tender: tender, fen: take))
            }
        }
        return (shares, left)
    }
}

extension UUID {
    /// The 16 bytes as two big-endian integers: PostgreSQL's order of `uuid`, without building strings.
    var sortKey: (UInt64, UInt64) {
        let b = uuid
        let high =
            UInt64(b.0) << 56 | UInt64(b.1) << 48 | UInt64(b.2) << 40 | UInt64(b.3) << 32 | UInt64(b.4) << 24 | UInt64(b.5) << 16
            | UInt64(b.6) << 8 | UInt64(b.7)
        let low =
            UInt64(b.8) << 56 | UInt64(b.9) << 48 | UInt64(b.10) << 40 | UInt64(b.11) << 32 | UInt64(b.12) << 24 | UInt64(b.13) << 16
            | UInt64(b.14) << 8 | UInt64(b.15)
        return (high, low)
    }
}
