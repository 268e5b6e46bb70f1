import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliMeters
import LinliServer
import LinliTenancy
import Testing

@Suite("Smart meters: readings over the gateway become billing's meter readings", .serialized)
struct SmartMeterTests {
    @Test("the last reading of a finished day goes to billing once; a decrease is refused, kept and alarmed, never dropped")
    func dailyTransfer() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let concentrator = try await server.registerDevice(demo, as: manager, kind: .meter)
        let room = try await BaseDataClient(wrapping: server.client).createRoom(
            .with {
                $0.requestID = UUID().uuidString
                $0.buildingID = demo.buildings[0].description
                $0.unit = "1单元"
                $0.number = "1201"
                $0.floor = 12
                $0.areaCentiM2 = 8_950
                $0.kind = .residence
            }, metadata: manager
        ).room
        let meters = Linli_Device_V1_MeterService.Client(wrapping: server.client)
        let bound = try await meters.bindSmartMeter(
            .with {
                $0.requestID = UUID().uuidString
                $0.deviceID = concentrator.id
                $0.code = "E-1201"
                $0.roomID = room.id
                $0.kind = .electricity
            }, metadata: manager)
        #expect(bound.code == "E-1201" && bound.transferredThrough.isEmpty)

        // Readings at times relative to the community's local midnight today.
        let day = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await BusinessDay.of(demo.community, on: connection, logger: server.app.logger)
        }
        let midnight = day.startOfToday()
        func send(_ value: Int64, hoursBeforeMidnight: Double) async throws {
            let offset = Int64(exactly: (midnight.addingTimeInterval(-hoursBeforeMidnight * 3_600).timeIntervalSinceNow * 1_000).rounded()) ?? 0
            let captured = try await DeviceProgram.run(
                concentrator.arguments("capture") + ["--meter", "E-1201:\(value)", "--time-offset-ms", "\(offset)"])
            #expect(captured.status == 0, "\(captured.errors)")
            let sent = try await DeviceProgram.run(concentrator.arguments() + ["--exit-when-acked", "--quiet"])
            #expect(sent.status == 0, "\(sent.errors)")
        }
        func transfer() async throws -> Linli_Device_V1_TransferMeterReadingsResponse {
            try await meters.transferMeterReadings(
                .with {
                    $0.requestID = UUID().uuidString
                    $0.communityID = demo.community.description
                }, metadata: manager)
        }
        func meter() async throws -> Linli_Device_V1_SmartMeter {
            try await meters.listSmartMeters(.with { $0.communityID = demo.community.description }, metadata: manager).meters[0]
        }
        let dayBefore = day.day(of: midnight.addingTimeInterval(-36 * 3_600))
        let yesterday = day.day(of: midnight.addingTimeInterval(-12 * 3_600))

        // The day before yesterday: the first reading is the meter's baseline.
        try await send(100_000, hoursBeforeMidnight: 36)
        #expect(try await transfer().transferred == 1)
        #expect(try await meter().transferredThrough == dayBefore)
        #expect(try await transfer().transferred == 0, "a day goes to billing once")

        // Yesterday the register read lower: refused with the reason, an alarm, nothing half-written.
        try await send(90_000, hoursBeforeMidnight: 12)
        let refused = try await transfer()
        #expect(refused.transferred == 0 && refused.refused == 1)
        let stuck = try await meter()
        #expect(stuck.transferredThrough == dayBefore && stuck.lastError.contains("value_centi"))
        let alarms = try await Linli_Device_V1_AlarmService.Client(wrapping: server.client).listAlarms(
            .with {
                $0.communityID = demo.community.description
                $0.activeOnly = true
                $0.typePrefix = "meter"
            }, metadata: manager
        ).alarms
        #expect(alarms.count == 1 && alarms.first?.source == "E-1201")

        // A later reading yesterday (the concentrator's correction) is the day's last: it goes through.
        try await send(112_345, hoursBeforeMidnight: 11)
        #expect(try await transfer().transferred == 1)
        let done = try await meter()
        #expect(done.transferredThrough == yesterday && done.lastError.isEmpty && done.lastValueCenti == 112_345)
        let readings: [(String, Int64)] = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            var rows: [(String, Int64)] = []
            for try await row in try await connection.query(
                "SELECT read_on::text, usage_centi FROM meter_readings ORDER BY read_on", logger: server.app.logger
            ).decode((String, Int64).self) {
                rows.append(row)
            }
            return rows
        }
        #expect(readings.map(\.0) == [dayBefore, yesterday] && readings.map(\.1) == [0, 12_345])
    }

    @Test("prepaid meter credit: the money is a liability until the meter acknowledges; a lapsed command is sent again, never dropped")
    func prepaidCredit() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let meterDevice = try await server.registerDevice(demo, as: manager, kind: .meter)
        let room = try await BaseDataClient(wrapping: server.client).createRoom(
            .with {
                $0.requestID = UUID().uuidString
                $0.buildingID = demo.buildings[0].description
                $0.unit = "1单元"
                $0.number = "0801"
                $0.floor = 8
                $0.areaCentiM2 = 8_950
                $0.kind = .residence
            }, metadata: manager
        ).room
        let meters = Linli_Device_V1_MeterService.Client(wrapping: server.client)
        let meter = try await meters.bindSmartMeter(
            .with {
                $0.requestID = UUID().uuidString
                $0.deviceID = meterDevice.id
                $0.code = "P-0801"
                $0.roomID = room.id
                $0.kind = .electricity
                $0.prepaid = true
            }, metadata: manager)
        let cashier = try await server.login(demo, "cashier")
        let credit = try await meters.topUpSmartMeter(
            .with {
                $0.requestID = UUID().uuidString
                $0.meterID = meter.id
                $0.amountFen = 5_000
                $0.method = .wechat
            }, metadata: cashier)
        #expect(credit.state == "sending" && credit.attempts == 1)
        func balances() async throws -> (liability: Int64, revenue: Int64) {
            try await server.app.database.tenantTransaction(demo.tenant) { connection in
                let rows = try await connection.query(
                    """
                    SELECT coalesce(sum(credits_fen - debits_fen) FILTER (WHERE kind = 'deposit' AND subtype LIKE 'meter_credit:%'), 0)::int8,
                           coalesce(sum(credits_fen - debits_fen) FILTER (WHERE kind = 'revenue' AND subtype = 'meter_credit'), 0)::int8
                    FROM ledger_accounts
                    """, logger: server.app.logger)
                for try await row in rows.decode((Int64, Int64).self) { return row }
                return (0, 0)
            }
        }
        #expect(try await balances() == (5_000, 0))
        // The meter stayed offline past the command's day: the job sends the credit again.
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await connection.query(
                "UPDATE device_commands SET state = 'expired' WHERE action = 'meter_credit'", logger: server.app.logger)
        }
        let store = SmartMeterStore(database: server.app.database)
        let first = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await store.settleCredits(on: connection, logger: server.app.logger)
        }
        // The shared server's own credit job may take its turn in between (once a minute, any
        // tenant): what must hold is that the lapsed credit went out again exactly once.
        #expect(first.0 == 0 && first.1 <= 1)
        let resent = try await meters.getMeterCredit(.with { $0.creditID = credit.id }, metadata: cashier)
        #expect(resent.state == "sending" && resent.attempts == 2)
        let run = try await DeviceProgram.run(meterDevice.arguments() + ["--run-seconds", "2"])
        #expect(run.status == 0 && run.output.contains("meter_credit P-0801 5000 fen credit \(credit.id)"), "\(run.output)")
        let second = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await store.settleCredits(on: connection, logger: server.app.logger)
        }
        #expect(second.0 <= 1 && second.1 == 0)
        let after = try await meters.getMeterCredit(.with { $0.creditID = credit.id }, metadata: cashier)
        #expect(after.state == "delivered" && after.attempts == 2)
        #expect(try await balances() == (0, 5_000))
    }
}
