import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliAlarms
import LinliCore
import LinliServer
import LinliTenancy
import PostgresNIO
import Testing

@testable import LinliDevices

@Suite("Alarms: fire panels over the device gateway (B-3)", .serialized)
struct AlarmTests {
    struct Fixture {
        let server: TestServer
        let demo: DemoTenant
        let manager: Metadata
        let panel: TestDevice
        var alarms: Linli_Device_V1_AlarmService.Client<HTTP2ClientTransport.Posix> { .init(wrapping: server.client) }

        static func make() async throws -> Fixture {
            let server = try await TestServer.shared.value
            let demo = try await server.newTenant()
            let manager = try await server.login(demo, "manager")
            let panel = try await server.registerDevice(demo, as: manager, kind: .detector)
            let f = Fixture(server: server, demo: demo, manager: manager, panel: panel)
            _ = try await f.alarms.createFirePoint(
                .with {
                    $0.requestID = UUID().uuidString
                    $0.deviceID = panel.id
                    $0.code = "1-001"
                    $0.kind = .smoke
                    $0.buildingID = demo.buildings[0].description
                    $0.floor = 3
                    $0.location = "3层电梯厅"
                }, metadata: manager)
            return f
        }

        func fire(_ events: [String]) async throws {
            let result = try await DeviceProgram.run(
                panel.arguments() + ["--exit-when-acked", "--quiet"] + events.flatMap { ["--fire", $0] })
            #expect(result.status == 0, "\(result.errors)")
        }

        func list(activeOnly: Bool = true) async throws -> [Linli_Device_V1_Alarm] {
            try await alarms.listAlarms(
                .with {
                    $0.communityID = demo.community.description
                    $0.activeOnly = activeOnly
                    $0.typePrefix = "fire"
                }, metadata: manager
            ).alarms
        }

        func inbox(_ username: String, topic: String = "device.alarm") async throws -> Int {
            let session = try await server.login(demo, username)
            let inbox = Linli_Property_V1_InboxService.Client(wrapping: server.client)
            return try await inbox.listNotifications(.init(), metadata: session).notifications.filter { $0.topic == topic }.count
        }

        func sql(_ query: PostgresQuery) async throws {
            try await server.app.database.tenantTransaction(demo.tenant) { connection in
                try await connection.query(query, logger: server.app.logger)
            }
        }
    }

    @Test("two smoke messages milliseconds apart raise one alarm, told to the guards within seconds; the panel's reset clears it")
    func oneAlarmThenReset() async throws {
        let f = try await Fixture.make()
        try await f.fire(["1-001:fire", "1-001:fire"])
        let active = try await f.list()
        #expect(active.count == 1)
        #expect(active.first?.occurrences == 2 && active.first?.severity == .critical && active.first?.status == .active)
        #expect(active.first?.location.contains("3层电梯厅") == true)
        let deadline = ContinuousClock.now + .seconds(5)
        while try await f.inbox("guard") == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try await f.inbox("guard") == 1)

        // Concurrent identical events in two transactions still make one alarm.
        let device = DeviceID(UUID(uuidString: f.panel.id)!)
        let store = DeviceStore(database: f.server.app.database)
        let generation: Int32 = try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            for try await g in try await connection.query("SELECT generation FROM devices WHERE id = \(device.uuid)", logger: f.server.app.logger)
                .decode(Int32.self)
            {
                return g
            }
            return 0
        }
        func event(_ seq: Int64) throws -> DeviceStore.IncomingEvent {
            var e = Linli_Device_V1_Event()
            e.seq = UInt64(clamping: seq)
            e.deviceTimeMs = Int64(exactly: (Date().timeIntervalSince1970 * 1000).rounded(.down)) ?? 0
            e.fire = .with {
                $0.pointCode = "2-002"
                $0.kind = .fire
            }
            return .init(seq: seq, kind: "fire", deviceTime: Date(), late: false, body: .init(bytes: try e.serializedBytes() as [UInt8]), event: e)
        }
        async let a = store.ingest(
            .init(device: device, generation: generation, events: [try event(101)], access: [], upTo: 101), tenant: f.demo.tenant,
            handler: FireHandler(), logger: f.server.app.logger)
        async let b = store.ingest(
            .init(device: device, generation: generation, events: [try event(102)], access: [], upTo: 102), tenant: f.demo.tenant,
            handler: FireHandler(), logger: f.server.app.logger)
        _ = try await (a, b)
        let second = try await f.list().filter { $0.source == "2-002" }
        #expect(second.count == 1 && second.first?.occurrences == 2, "an unconfigured point still raises its one alarm")

        // The panel's reset clears every fire alarm of the panel (cleared by the device, not a person).
        try await f.sql("UPDATE devices SET commit_point = 0 WHERE id = \(device.uuid)")
        try await f.fire([":reset"])
        #expect(try await f.list().isEmpty)
        let cleared = try await f.list(activeOnly: false)
        #expect(cleared.count == 2 && cleared.allSatisfy { $0.status == .cleared && $0.clearedBy.isEmpty })
    }

    @Test("unacknowledged past the deadline → a work order and the managers told; a false alarm needs a reason and counts toward the daily limit")
    func escalationAndFalseAlarms() async throws {
        let f = try await Fixture.make()
        _ = try await f.alarms.setFireSettings(
            .with {
                $0.requestID = UUID().uuidString
                $0.communityID = f.demo.community.description
                $0.escalateAfterSeconds = 180
                $0.falseAlarmDailyLimit = 1
            }, metadata: f.manager)
        try await f.fire(["1-001:fire"])
        var alarm = try #require(try await f.list().first)
        // Not yet due: nothing escalates.
        #expect(try await f.server.app.alarmEscalation.run(f.demo.tenant) == 0)
        try await f.sql("UPDATE device_alarms SET raised_at = now() - interval '181 seconds' WHERE id = \(UUID(uuidString: alarm.id)!)")
        #expect(try await f.server.app.alarmEscalation.run(f.demo.tenant) == 1)
        #expect(try await f.server.app.alarmEscalation.run(f.demo.tenant) == 0, "each alarm escalates once")
        alarm = try #require(try await f.list().first)
        #expect(alarm.hasEscalatedAt && !alarm.workOrderID.isEmpty)
        let order = try await Linli_Property_V1_WorkOrderService.Client(wrapping: f.server.client).getWorkOrder(
            .with { $0.workOrderID = alarm.workOrderID }, metadata: f.manager)
        #expect(order.workOrder.priority == .emergency && order.workOrder.category == "fire")
        let deadline = ContinuousClock.now + .seconds(5)
        while try await f.inbox("manager") < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try await f.inbox("manager") >= 2, "the alarm, then its escalation")

        // A false alarm without its cause is refused, naming the field; with it, it clears.
        do {
            _ = try await f.alarms.clearAlarm(
                .with {
                    $0.requestID = UUID().uuidString
                    $0.alarmID = alarm.id
                    $0.falseAlarm = true
                }, metadata: f.manager)
            Issue.record("a false alarm without a reason was accepted")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument && error.message.contains("reason"))
        }
        func clearFalse(_ id: String) async throws -> Linli_Device_V1_Alarm {
            try await f.alarms.clearAlarm(
                .with {
                    $0.requestID = UUID().uuidString
                    $0.alarmID = id
                    $0.falseAlarm = true
                    $0.reason = "厨房油烟"
                }, metadata: f.manager)
        }
        let first = try await clearFalse(alarm.id)
        #expect(first.status == .cleared && first.falseAlarm && first.clearedReason == "厨房油烟")
        var points = try await f.alarms.listFirePoints(.with { $0.communityID = f.demo.community.description }, metadata: f.manager).points
        #expect(points.first?.hasRemediationFlaggedAt == false, "one false alarm is within the limit of 1")
        // A second false alarm the same day passes the limit: the point is flagged.
        try await f.fire(["1-001:fire"])
        let again = try #require(try await f.list().first)
        let guardSession = try await f.server.login(f.demo, "guard")
        _ = try await f.alarms.acknowledgeAlarm(
            .with {
                $0.requestID = UUID().uuidString; $0.alarmID = again.id
            }, metadata: guardSession)
        _ = try await clearFalse(again.id)
        points = try await f.alarms.listFirePoints(.with { $0.communityID = f.demo.community.description }, metadata: f.manager).points
        #expect(points.first?.hasRemediationFlaggedAt == true)

        let report = try await f.alarms.getFireReport(
            .with {
                $0.communityID = f.demo.community.description
                $0.from = ParkingFixture.yesterday
                $0.to = ParkingFixture.today
            }, metadata: f.manager)
        #expect(report.fireAlarms == 2 && report.falseAlarms == 2 && report.escalated == 1 && report.pointsFlagged == 1)
        #expect(report.alarms.count == 2)

        // Another tenant's manager cannot see or touch the alarm.
        let other = try await f.server.newTenant()
        let stranger = try await f.server.login(other, "manager")
        do {
            _ = try await f.alarms.acknowledgeAlarm(
                .with {
                    $0.requestID = UUID().uuidString; $0.alarmID = again.id
                }, metadata: stranger)
            Issue.record("another tenant acknowledged the alarm")
        } catch let error as RPCError {
            #expect(error.code == .notFound)
        }
    }

    @Test(
        "a trapped passenger: one alarm to the guards, an emergency work order with the 30-minute arrival clock, escalation, arrival and cause recorded"
    )
    func trappedPassenger() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let monitor = try await server.registerDevice(demo, as: manager, kind: .elevator)
        let alarms = Linli_Device_V1_AlarmService.Client(wrapping: server.client)
        let sent = try await DeviceProgram.run(
            monitor.arguments() + ["--exit-when-acked", "--quiet", "--elevator", "E1:7:trapped", "--elevator", "E1:7:trapped"])
        #expect(sent.status == 0, "\(sent.errors)")
        func trapped() async throws -> [Linli_Device_V1_Alarm] {
            try await alarms.listAlarms(
                .with {
                    $0.communityID = demo.community.description
                    $0.typePrefix = "elevator"
                }, metadata: manager
            ).alarms
        }
        var alarm = try #require(try await trapped().first)
        #expect(try await trapped().count == 1 && alarm.type == "elevator.trapped" && alarm.occurrences == 2 && alarm.severity == .critical)
        let order = try await Linli_Property_V1_WorkOrderService.Client(wrapping: server.client).getWorkOrder(
            .with { $0.workOrderID = alarm.workOrderID }, metadata: manager
        ).workOrder
        #expect(order.priority == .emergency && order.category == "elevator")
        #expect(abs(order.dueAt.date.timeIntervalSince(order.createdAt.date) - 1_800) < 5, "the 30-minute arrival clock")
        let inbox = Linli_Property_V1_InboxService.Client(wrapping: server.client)
        let guardSession = try await server.login(demo, "guard")
        let deadline = ContinuousClock.now + .seconds(5)
        func told() async throws -> Int {
            try await inbox.listNotifications(.init(), metadata: guardSession).notifications.filter { $0.topic == "device.alarm" }.count
        }
        while try await told() == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try await told() == 1)

        // Nobody arrived in 30 minutes: the managers are told, once.
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await connection.query(
                "UPDATE device_alarms SET raised_at = now() - interval '31 minutes' WHERE id = \(UUID(uuidString: alarm.id)!)",
                logger: server.app.logger)
        }
        #expect(try await server.app.alarmEscalation.run(demo.tenant) == 1)
        #expect(try await server.app.alarmEscalation.run(demo.tenant) == 0)
        // The maintainer arrives (acknowledges) and records the cause (clears).
        alarm = try await alarms.acknowledgeAlarm(
            .with {
                $0.requestID = UUID().uuidString; $0.alarmID = alarm.id
            }, metadata: guardSession)
        #expect(alarm.status == .acknowledged && alarm.hasAcknowledgedAt && alarm.hasEscalatedAt)
        alarm = try await alarms.clearAlarm(
            .with {
                $0.requestID = UUID().uuidString
                $0.alarmID = alarm.id
                $0.reason = "门锁回路故障，已放人并修复"
            }, metadata: guardSession)
        #expect(alarm.status == .cleared && alarm.clearedReason.contains("门锁"))
    }

    @Test(
        "group commit: one statement stores many devices' readings, each device's rule steps on its own readings only, a stale device stores nothing"
    )
    func groupCommitTelemetry() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try #require(demo.users["manager"])
        let logger = server.app.logger
        let store = DeviceStore(database: server.app.database)
        let devices: [DeviceID] = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            var made: [DeviceID] = []
            for index in 0..<7 {
                let (device, _) = try await store.register(
                    community: demo.community, serial: "GC-\(index)", kind: "energy", name: "水泵 \(index)", by: manager, on: connection,
                    logger: logger)
                made.append(device.id)
            }
            _ = try await AlarmStore().setRule(
                .init(
                    id: UUIDv7.make(), community: demo.community, deviceKind: "energy", metric: "pump.pressure_kpa", above: true,
                    threshold: 500_000, durationSeconds: 0, repeatCount: 2, clearThreshold: 400_000, severity: "major", name: "pressure_high"),
                on: connection, logger: logger)
            return made
        }
        let start = Date()
        func reading(_ seq: Int64, _ value: Int64) throws -> DeviceStore.IncomingEvent {
            var event = Linli_Device_V1_Event()
            event.seq = UInt64(clamping: seq)
            event.telemetry = .with {
                $0.metric = "pump.pressure_kpa"
                $0.valueMilli = value
            }
            return DeviceStore.IncomingEvent(
                seq: seq, kind: "telemetry", deviceTime: start.addingTimeInterval(Double(seq)), late: false,
                body: ByteBuffer(bytes: try event.serializedBytes() as [UInt8]), event: event)
        }
        // Even devices breach twice in a row (the rule is met), odd ones once and recover; the
        // last device authenticated under a generation that is no longer its own.
        var batches: [DeviceStore.Batch] = []
        for (index, device) in devices.enumerated() {
            let values: [Int64] = index % 2 == 0 ? [600_000, 700_000] : [600_000, 300_000]
            batches.append(
                .init(
                    device: device, generation: index == 6 ? 9 : 1, events: [try reading(1, values[0]), try reading(2, values[1])], access: [],
                    upTo: 2))
        }
        let results = try await store.ingest(batches, tenant: demo.tenant, handler: TelemetryHandler(), logger: logger)
        #expect(results.prefix(6).allSatisfy { $0?.commitPoint == 2 && $0?.stored == 2 })
        #expect(results[6] == nil)
        // Redelivered, the same batches store nothing new and step no rule again.
        let again = try await store.ingest(Array(batches.prefix(6)), tenant: demo.tenant, handler: TelemetryHandler(), logger: logger)
        #expect(again.allSatisfy { $0?.stored == 0 })
        let (rows, events, alarmed, streaks) = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            var result: (Int64, Int64, [UUID], [UUID: Int32]) = (0, 0, [], [:])
            for try await row in try await connection.query(
                "SELECT (SELECT count(*) FROM telemetry), (SELECT count(*) FROM device_events)", logger: logger
            ).decode((Int64, Int64).self) { (result.0, result.1) = row }
            for try await id in try await connection.query(
                "SELECT device_id FROM device_alarms WHERE type = 'energy.pressure_high' AND status <> 'cleared' ORDER BY device_id",
                logger: logger
            ).decode(UUID.self) { result.2.append(id) }
            for try await (id, count) in try await connection.query(
                "SELECT device_id, consecutive FROM alarm_rule_state", logger: logger
            ).decode((UUID, Int32).self) { result.3[id] = count }
            return result
        }
        #expect(rows == 12 && events == 12)
        #expect(alarmed == [devices[0], devices[2], devices[4]].map(\.uuid).sorted { $0.uuidString < $1.uuidString })
        #expect(streaks.count == 6 && (0..<6).allSatisfy { streaks[devices[$0].uuid] == ($0 % 2 == 0 ? 2 : 0) }, "\(streaks)")
    }

    @Test("energy telemetry: a duration rule's state outlives a disconnect, the alarm raises once and clears on recovery; curves downsample")
    func telemetryRules() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let pump = try await server.registerDevice(demo, as: manager, kind: .energy)
        let alarms = Linli_Device_V1_AlarmService.Client(wrapping: server.client)
        _ = try await alarms.setAlarmRule(
            .with {
                $0.requestID = UUID().uuidString
                $0.rule = .with {
                    $0.communityID = demo.community.description
                    $0.deviceKind = "energy"
                    $0.metric = "pump.pressure_kpa"
                    $0.comparison = .above
                    $0.thresholdMilli = 800_000
                    $0.durationSeconds = 600
                    $0.recoveryThresholdMilli = 700_000
                    $0.severity = .major
                    $0.name = "pressure_high"
                }
            }, metadata: manager)
        func send(_ value: Int64, minutesAgo: Int) async throws {
            let captured = try await DeviceProgram.run(
                pump.arguments("capture") + ["--telemetry", "pump.pressure_kpa:\(value)", "--time-offset-ms", "\(-minutesAgo * 60_000)"])
            #expect(captured.status == 0, "\(captured.errors)")
            let sent = try await DeviceProgram.run(pump.arguments() + ["--exit-when-acked", "--quiet"])
            #expect(sent.status == 0, "\(sent.errors)")
        }
        func active() async throws -> [Linli_Device_V1_Alarm] {
            try await alarms.listAlarms(
                .with {
                    $0.communityID = demo.community.description
                    $0.activeOnly = true
                    $0.typePrefix = "energy"
                }, metadata: manager
            ).alarms
        }
        // Above 800 kPa from 20 minutes ago, each reading on a connection of its own.
        try await send(900_000, minutesAgo: 20)
        try await send(910_000, minutesAgo: 15)
        #expect(try await active().isEmpty, "5 minutes is not yet 10")
        try await send(920_000, minutesAgo: 9)
        let raised = try await active()
        #expect(raised.count == 1 && raised.first?.type == "energy.pressure_high" && raised.first?.source == "pump.pressure_kpa")
        try await send(930_000, minutesAgo: 5)
        #expect(try await active().first?.occurrences == 2)
        try await send(750_000, minutesAgo: 4)
        #expect(try await active().count == 1, "between the thresholds the alarm stays")
        try await send(650_000, minutesAgo: 3)
        #expect(try await active().isEmpty)

        let curve = try await alarms.getTelemetry(
            .with {
                $0.deviceID = pump.id
                $0.metric = "pump.pressure_kpa"
                $0.from = .init(date: Date().addingTimeInterval(-30 * 60))
                $0.to = .init(date: Date())
                $0.bucketSeconds = 600
            }, metadata: manager)
        #expect(curve.points.reduce(0) { $0 + $1.samples } == 6)
        #expect(curve.points.map(\.maxMilli).max() == 930_000 && curve.points.map(\.minMilli).min() == 650_000)
        #expect(curve.uptimeBasisPoints > 0 && curve.uptimeBasisPoints <= 10_000)
    }
}
