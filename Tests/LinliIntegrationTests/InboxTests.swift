import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliServer
import PostgresNIO
import SwiftProtobuf
import Testing

@Suite("Outbox relay and inbox")
struct InboxTests {
    @Test("a committed parcel notice reaches the resident's inbox without waiting for a sweep; read marks count down")
    func parcelToInbox() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let inbox = Linli_Property_V1_InboxService.Client(wrapping: server.client)
        let parcels = Linli_Property_V1_ParcelService.Client(wrapping: server.client)
        let resident = try await server.login(demo, "resident1")
        var log = Linli_Property_V1_LogParcelRequest()
        log.requestID = UUID().uuidString
        log.communityID = demo.community.description
        log.residentID = try #require(demo.users["resident1"]).description
        log.carrier = "顺丰"
        log.trackingNumber = "SF\(UUID().uuidString.prefix(10))"
        let parcel = try await parcels.logParcel(log, metadata: try await server.login(demo, "guard")).parcel

        // The test server sweeps every 30 s; the LISTEN wake-up delivers within moments.
        var found: [Linli_Property_V1_Notification] = []
        for _ in 0..<50 where found.isEmpty {
            found = try await inbox.listNotifications(.init(), metadata: resident).notifications
            if found.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        let note = try #require(found.first)
        #expect(note.topic == "parcel.arrived" && note.payloadJson.contains(parcel.pickupCode) && !note.read)
        #expect(try await inbox.listNotifications(.init(), metadata: try await server.login(demo, "resident2")).notifications.isEmpty)

        var mark = Linli_Property_V1_MarkNotificationsReadRequest()
        mark.requestID = UUID().uuidString
        #expect(try await inbox.markNotificationsRead(mark, metadata: resident).marked == 1)
        let after = try await inbox.listNotifications(.init(), metadata: resident)
        #expect(after.unreadCount == 0 && after.notifications.first?.read == true)
    }

    @Test("several relays at once deliver every message exactly once, each topic to its own consumer")
    func exactlyOnce() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let resident = try #require(demo.users["resident1"])
        let logger = server.app.database.logger
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await connection.query(
                """
                INSERT INTO outbox (topic, recipient_id, payload)
                SELECT CASE WHEN g % 10 = 0 THEN 'billing.work_order_charge' ELSE 'work_order.completed' END, \(resident.uuid),
                       jsonb_build_object('work_order_id', g::text)
                FROM generate_series(1, 2500) g
                """, logger: logger)
        }
        _ = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<3 { group.addTask { try await server.app.outboxRelay.relayAll() } }
            return try await group.reduce(0, +)
        }
        let (delivered, distinct, toBilling) = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            var result: (Int64, Int64, Int64) = (0, 0, 0)
            for try await row in try await connection.query(
                """
                SELECT (SELECT count(*) FROM notifications WHERE topic = 'work_order.completed'),
                       (SELECT count(DISTINCT payload) FROM notifications WHERE topic = 'work_order.completed'),
                       (SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL AND topic = 'billing.work_order_charge')
                       - (SELECT count(*) FROM notifications WHERE topic = 'billing.work_order_charge')
                """, logger: logger
            ).decode((Int64, Int64, Int64).self) { result = row }
            return result
        }
        // The billing messages went to billing (which logs these malformed ones), none to the inbox.
        #expect(delivered == 2250 && distinct == 2250 && toBilling == 250)
    }
}
