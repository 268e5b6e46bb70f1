import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// What a resident sees of billing on their phone: the rooms they live in now (through their
/// resident records linked to their app account) and nothing else.
extension PaymentStore {
    public struct ReceiptSummary: Sendable, Equatable {
        public var payment: UUID
        public var receiptNo: String
        public var totalFen: Int64
        public var paidAt: Date
        public var void: Bool
    }

    public struct MyRoom: Sendable, Equatable {
        public var room: RoomID
        public var label: String
        public var community: CommunityID
        public var bills: [FeeStore.Bill]
        public var prepaid: [PrepaidAccount]
        public var receipts: [ReceiptSummary]
        public var totalDueFen: Int64 { bills.reduce(0) { $0 + $1.totalDueFen } }
    }

    public struct MyPrepaid: Sendable, Equatable {
        public var community: CommunityID
        public var resident: ResidentID
        public var accounts: [PrepaidAccount]
    }

    /// The caller's rooms with their bills (open ones, or also those fallen due in the last year),
    /// prepaid accounts and latest receipts, and the caller's own prepaid accounts.
    public func myBilling(
        openOnly: Bool, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (rooms: [MyRoom], own: [MyPrepaid]) {
        var rooms: [MyRoom] = []
        for (room, label, community, since) in try await Self.myRooms(principal, connection, logger) {
            let day = try await BusinessDay.of(community, on: connection, logger: logger)
            let cutoff = day.adding(-365, to: day.today()) ?? ""
            let bills = try await FeeStore.bills(room: room, ids: nil, openOnly: openOnly, lock: false, connection, logger)
            // Only what was paid while the caller lived here: an earlier occupant's receipts stay theirs.
            let receipts = try await connection.run(
                """
                SELECT id, receipt_no, total_fen, created_at, voided_at IS NOT NULL FROM payments
                WHERE room_id = \(room.uuid) AND created_at >= \(since) ORDER BY created_at DESC LIMIT 20
                """, logger: logger)
            var summaries: [ReceiptSummary] = []
            for try await (id, number, total, at, void) in receipts.decode((UUID, String, Int64, Date, Bool).self) {
                summaries.append(ReceiptSummary(payment: id, receiptNo: number, totalFen: total, paidAt: at, void: void))
            }
            rooms.append(
                MyRoom(
                    room: room, label: label, community: community,
                    bills: bills.filter { $0.totalDueFen > 0 || $0.dueOn >= cutoff },
                    prepaid: try await prepaidAccounts(.room(room), for: principal, on: connection, logger: logger),
                    receipts: summaries))
        }
        var own: [MyPrepaid] = []
        let residents = try await connection.run(
            """
            SELECT id, community_id FROM residents WHERE user_id = \(principal.subjectID.uuid) ORDER BY community_id
            """, logger: logger)
        for try await (resident, community) in residents.decode((UUID, UUID).self) where principal.canAct(in: CommunityID(community)) {
            own.append(MyPrepaid(community: CommunityID(community), resident: ResidentID(resident), accounts: []))
        }
        for index in own.indices {
            own[index].accounts = try await prepaidAccounts(.resident(own[index].resident), for: principal, on: connection, logger: logger)
        }
        return (rooms, own)
    }

    /// A receipt of one of the caller's rooms; any other payment is not found, as if it did not exist.
    public func myReceipt(
        _ payment: UUID, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Receipt {
        let since = Dictionary(
            try await Self.myRooms(principal, connection, logger).map { ($0.room, $0.since) },
            uniquingKeysWith: min)
        let rows = try await connection.run("SELECT room_id, created_at FROM payments WHERE id = \(payment)", logger: logger)
        for try await (room, paidAt) in rows.decode((UUID, Date).self) {
            guard let movedIn = since[RoomID(room)], paidAt >= movedIn else { break }
            return try await receipt(payment, for: principal, on: connection, logger: logger)
        }
        throw LinliError.notFound("payment")
    }

    /// The rooms the caller lives in today (in each community's own time zone), in the
    /// communities they may act in, with the start of the day they moved in (the earliest of
    /// their current residencies there).
    static func myRooms(
        _ principal: Principal, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> [(room: RoomID, label: String, community: CommunityID, since: Date)] {
        let rows = try await connection.run(
            """
            SELECT r.id, room_label(bd.name, r.unit, r.number), r.community_id, community_day_start(r.community_id, min(h.move_in))
            FROM residents p JOIN residencies h ON h.resident_id = p.id
            JOIN rooms r ON r.id = h.room_id JOIN buildings bd ON bd.id = r.building_id
            WHERE p.user_id = \(principal.subjectID.uuid) AND resides_on(h.move_in, h.move_out, community_today(r.community_id))
            GROUP BY r.id, bd.name, r.unit, r.number, r.community_id
            ORDER BY 2
            """, logger: logger)
        var result: [(room: RoomID, label: String, community: CommunityID, since: Date)] = []
        for try await (room, label, community, since) in rows.decode((UUID, String, UUID, Date).self)
        where principal.canAct(in: CommunityID(community)) {
            result.append((RoomID(room), label, CommunityID(community), since))
        }
        return result
    }
}
