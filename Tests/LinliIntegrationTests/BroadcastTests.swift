import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliAlarms
import LinliCore
import LinliServer
import LinliTenancy
import Testing

@Suite("IP broadcast: tasks reach every terminal of a zone and each acknowledges", .serialized)
struct BroadcastTests {
    @Test("a daily task goes to each terminal; an offline terminal gets it when it returns, even past the command's day; emergencies reach all")
    func deliveries() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let one = try await server.registerDevice(demo, as: manager, kind: .broadcast)
        let two = try await server.registerDevice(demo, as: manager, kind: .broadcast)
        let broadcast = Linli_Device_V1_BroadcastService.Client(wrapping: server.client)
        let zone = try await broadcast.createZone(
            .with {
                $0.requestID = UUID().uuidString
                $0.communityID = demo.community.description
                $0.name = "1栋"
                $0.deviceIds = [one.id, two.id]
            }, metadata: manager)
        let task = try await broadcast.scheduleBroadcast(
            .with {
                $0.requestID = UUID().uuidString
                $0.communityID = demo.community.description
                $0.zoneIds = [zone.id]
                $0.priority = 5
                $0.source = .tts
                $0.content = "垃圾分类投放时间为早七点至九点"
                $0.repeat = .daily
                $0.minuteOfDay = 7 * 60
                $0.durationSeconds = 30
            }, metadata: manager)
        #expect(task.deliveries.count == 2 && task.deliveries.allSatisfy { $0.state == "queued" })

        let first = try await DeviceProgram.run(one.arguments() + ["--run-seconds", "2"])
        #expect(first.status == 0 && first.output.contains("broadcast task \(task.id) v1 priority 5"), "\(first.output)")
        func states() async throws -> [String: String] {
            let status = try await broadcast.getBroadcastTask(.with { $0.taskID = task.id }, metadata: manager)
            return Dictionary(uniqueKeysWithValues: status.deliveries.map { ($0.deviceID, $0.state) })
        }
        var now = try await states()
        #expect(now[one.id] == "succeeded" && now[two.id] == "queued")

        // Terminal two stayed away past the command's day: its copy expired; the sync sends it again.
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await connection.query(
                """
                UPDATE device_commands SET state = 'expired', expires_at = now() - interval '1 second'
                WHERE id = (SELECT command_id FROM broadcast_deliveries WHERE device_id = \(UUID(uuidString: two.id)!))
                """, logger: server.app.logger)
        }
        let resent = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await BroadcastStore(database: server.app.database).resync(on: connection, logger: server.app.logger)
        }
        // The shared server's own sync (once a minute, any tenant) may have sent it first; either
        // way the terminal must now hear the task again.
        #expect(resent <= 1)
        let second = try await DeviceProgram.run(two.arguments() + ["--run-seconds", "2"])
        #expect(second.status == 0 && second.output.contains("broadcast task \(task.id)"), "\(second.output)")
        now = try await states()
        #expect(now[one.id] == "succeeded" && now[two.id] == "succeeded")

        // An emergency goes to every terminal of the community at priority 1.
        let emergency = try await broadcast.playEmergency(
            .with {
                $0.requestID = UUID().uuidString
                $0.communityID = demo.community.description
                $0.content = "请立即从最近的安全出口疏散"
            }, metadata: manager)
        #expect(emergency.priority == 1 && emergency.deliveries.count == 2)
        let heard = try await DeviceProgram.run(one.arguments() + ["--run-seconds", "2"])
        #expect(heard.output.contains("priority 1 请立即"), "\(heard.output)")

        // Cancelling tells the holders to drop it; another tenant cannot see the task.
        let cancelled = try await broadcast.cancelBroadcastTask(
            .with {
                $0.requestID = UUID().uuidString; $0.taskID = task.id
            }, metadata: manager)
        #expect(cancelled.cancelled && cancelled.version == 2 && cancelled.deliveries.allSatisfy { $0.state == "queued" })
        let stranger = try await server.login(try await server.newTenant(), "manager")
        do {
            _ = try await broadcast.getBroadcastTask(.with { $0.taskID = task.id }, metadata: stranger)
            Issue.record("another tenant read the task")
        } catch let error as RPCError {
            #expect(error.code == .notFound)
        }
    }
}
