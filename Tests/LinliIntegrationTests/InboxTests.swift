import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliServer
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf
import Synchronization
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

        // The test server sweeps every 30 s; the wake-up of the server that committed the parcel
        // delivers within moments, and no trigger notifies from the writing transaction (whose
        // cluster-wide commit lock held every tenant's outbox writes to ~1,000 a second).
        let triggers = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            var count = 0
            let rows = try await connection.run(
                "SELECT count(*)::int8 FROM pg_trigger WHERE tgrelid = 'outbox'::regclass AND NOT tgisinternal", logger: server.app.database.logger)
            for try await n in rows.decode(Int64.self) { count = Int(clamping: n) }
            return count
        }
        #expect(triggers == 0)
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

/// A billing consumer that always fails, to show a failing consumer holds up no one else.
struct FailingBilling: OutboxConsumer {
    let name = OutboxConsumerName.billing
    /// How many batches it was handed (and refused).
    let calls = Calls()
    final class Calls: Sendable {
        let count = Atomic<Int>(0)
    }
    func consume(_ messages: [Outbox.Message], tenant: TenantRef, on connection: PostgresConnection, logger: Logger) async throws {
        calls.count.add(1, ordering: .relaxed)
        throw LinliError(.internal, "billing is down")
    }
}

@Suite("Outbox consumers fail alone")
struct OutboxIsolationTests {
    @Test("a failing consumer keeps its messages for the next pass; the inbox is still delivered")
    func failingConsumerHoldsUpNoOne() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let resident = try #require(demo.users["resident1"])
        let logger = server.app.database.logger
        // The test server's own relay would take these messages too: it wakes on every commit,
        // and a sweep that listed the tenants before it left the registry still holds it by its
        // schema's name. Out of the registry and renamed (schema and role), the tenant is seen
        // by the relay below only.
        let hidden = try TenantRef(id: demo.tenant.id, slug: "h" + String(demo.tenant.slug.prefix(39)), isActive: true)
        try await server.app.database.platformTransaction { connection in
            try await connection.query("DELETE FROM platform.rollup_state WHERE tenant_id = \(demo.tenant.id.uuid)", logger: logger)
            try await connection.query("DELETE FROM platform.tenants WHERE id = \(demo.tenant.id.uuid)", logger: logger)
        }
        // Only the superuser may rename them (the application role inherits nothing).
        try await Self.asSuperuser(
            [
                "ALTER SCHEMA \(demo.tenant.schema) RENAME TO \(hidden.schema)",
                "ALTER ROLE \(demo.tenant.schema) RENAME TO \(hidden.schema)",
            ], logger: logger)
        server.app.tenants.invalidate()
        try await server.app.database.tenantTransaction(hidden) { connection in
            for topic in ["billing.work_order_charge", "work_order.completed"] {
                try await connection.query(
                    """
                    INSERT INTO outbox (topic, recipient_id, payload) VALUES (\(topic), \(resident.uuid), '{"work_order_id": "x"}')
                    """, logger: logger)
            }
        }
        let failing = FailingBilling()
        let relay = OutboxRelayJob(
            database: server.app.database, tenants: server.app.tenants,
            consumers: [failing] + LinliApplication.outboxConsumers(redis: nil, logger: logger).filter { $0.name == .inbox }, logger: logger)
        let moved = try await relay.relay(hidden)
        let (inbox, waiting) = try await server.app.database.tenantTransaction(hidden) { connection in
            var result: (Int64, Int64) = (0, 0)
            for try await row in try await connection.query(
                """
                SELECT (SELECT count(*) FROM notifications WHERE topic = 'work_order.completed'),
                       (SELECT count(*) FROM outbox WHERE topic = 'billing.work_order_charge' AND delivered_at IS NULL)
                """, logger: logger
            ).decode((Int64, Int64).self) { result = row }
            return result
        }
        // Billing was handed its message and failed: the message waits. The inbox consumer,
        // after it in the same pass, delivered.
        #expect(failing.calls.count.load(ordering: .relaxed) == 1)
        #expect(moved == 1)
        #expect(inbox == 1)
        #expect(waiting == 1)
    }

    /// Runs `statements` as the test stack's superuser (its cluster trusts loopback connections).
    static func asSuperuser(_ statements: [String], logger: Logger) async throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration = PostgresConnection.Configuration(
            host: environment["LINLI_POSTGRES_HOST"] ?? "127.0.0.1", port: Int(environment["LINLI_POSTGRES_PORT"] ?? "") ?? 5432,
            username: "postgres", password: nil, database: environment["LINLI_POSTGRES_DATABASE"] ?? "linli", tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            for sql in statements { try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
