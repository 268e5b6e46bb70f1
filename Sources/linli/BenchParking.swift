import ArgumentParser
import Foundation
import Histogram
import LinliAPI
import LinliAlarms
import LinliCore
import LinliDevices
import LinliParking
import LinliServer
import LinliTenancy
import NIOCore
import PostgresNIO

extension Bench {
    /// Gate decisions and an alarm storm through the gateway's ingest path (the same
    /// `DeviceStore.ingest` with the same handlers the gateway runs, one transaction per read),
    /// in process against the local stack; each beside a reference run of the same reads as
    /// plain SQL in the same run.
    struct Parking: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gates", abstract: "Measure plate read → gate decision and a fire alarm storm.")

        @Option(help: "Lanes busy at once (each an entry and an exit lane of its own barrier).") var lanes = 200
        @Option(help: "Cars each lane lets in and out.") var cars = 25
        @Option(help: "Fire panels in the alarm storm.") var detectors = 1000
        @Option(help: "Identical fire events each panel sends.") var events = 10
        @Option(help: "Energy devices sending one reading a second.") var energyDevices = 2000
        @Option(help: "Seconds they send for.") var energySeconds = 60

        func validate() throws {
            guard lanes > 0, cars > 0, detectors > 0, events > 0 else { throw ValidationError("positive counts") }
        }

        func run() async throws {
            let app = try Runtime.application()
            let options = self
            let line: String = try await app.withStorage { try await options.measure(app) }
            print(line)
        }

        static func ms(_ micros: UInt64) -> String { String(format: "%.1f", Double(micros) / 1000) }

        static func micros(_ elapsed: Duration) -> UInt64 {
            UInt64(clamping: max(0, elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
        }

        /// As many telemetry rows written by `COPY` (psql `\copy`) into the same table: rows per second.
        static func copyTelemetry(_ app: LinliApplication, tenant: TenantRef, devices: [DeviceID], rows: Int) async throws -> Double {
            let base = Date().addingTimeInterval(86_400)
            let stamp = ISO8601DateFormatter()
            var csv = ""
            csv.reserveCapacity(rows * 80)
            let per = max(1, rows / max(1, devices.count))
            for device in devices {
                for second in 0..<per {
                    csv += "\(device),pump.pressure_kpa,\(stamp.string(from: base.addingTimeInterval(TimeInterval(second)))),\(400_000 + second)\n"
                }
            }
            let elapsed = try psqlCopy(csv, into: "telemetry (device_id, metric, at, value_milli)", tenant: tenant)
            return Double(devices.count * per) / elapsed.seconds
        }

        func measure(_ app: LinliApplication) async throws -> String {
            let logger = app.logger
            let slug = "benchgate_" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
            let demo = try await app.seedDemoTenant(slug: slug, name: slug, password: "bench-password-1")
            guard let manager = demo.users["manager"] else { throw ValidationError("no demo manager") }
            let principal = Principal(
                tenantID: demo.tenant.id, subjectID: manager, displayName: "bench", role: .manager, communityIDs: [demo.community],
                buildingIDs: [])
            let store = DeviceStore(database: app.database)
            let parking = ParkingStore()
            // A lot, the fee table, `lanes` barriers with an entry and an exit lane each.
            let barriers: [DeviceID] = try await app.database.tenantTransaction(demo.tenant) { connection in
                let lot = try await parking.createLot(
                    .init(
                        community: demo.community, code: "B1", name: "压测停车场", kind: "underground", parent: nil, capacity: 100_000,
                        payWindowMinutes: 15, visitorFreeMinutes: 120, visitorDailyLimit: 3, duplicateReadSeconds: 0),
                    for: principal, on: connection, logger: logger)
                _ = try await parking.setRule(
                    ParkingFeeRule(
                        kind: .standard, freeMinutes: 15,
                        tariff: .init(firstBlockMinutes: 60, firstBlockFen: 500, stepMinutes: 30, stepFen: 200, capFen: 2_000)),
                    name: "临时车", lot: lot, by: manager, on: connection, logger: logger)
                var made: [DeviceID] = []
                for index in 0..<lanes {
                    let (device, _) = try await store.register(
                        community: demo.community, serial: "GATE-\(index)", kind: "barrier", name: "道闸 \(index)", by: manager,
                        on: connection, logger: logger)
                    for (code, direction) in [("in\(index)", "entry"), ("out\(index)", "exit")] {
                        _ = try await parking.addLane(
                            .init(
                                id: UUIDv7.make(), lot: lot.id, device: device.id.uuid, code: code, name: code, direction: direction,
                                tempCarsEnter: true, charges: true, reentry: false, exitWithoutEntry: false),
                            lot: lot, on: connection, logger: logger)
                    }
                    made.append(device.id)
                }
                return made
            }
            // Through the gateway's group commit, as a connected lane's batches go.
            let gate = IngestQueue(store: store, handler: ParkingGate(), logger: logger)
            func plate(_ lane: Int, _ car: Int) -> String {
                let letters = Array("ABCDEFGHJKLMNPQRSTUVWXYZ")
                return "沪\(letters[lane % letters.count])\(String(format: "%02d", lane / letters.count))\(String(format: "%03d", car))"
            }
            func read(_ device: DeviceID, seq: Int64, lane: String, plate: String) throws -> DeviceStore.IncomingEvent {
                var event = Linli_Device_V1_Event()
                event.seq = UInt64(clamping: seq)
                event.deviceTimeMs = Int64(exactly: (Date().timeIntervalSince1970 * 1000).rounded(.down)) ?? 0
                event.plate = .with {
                    $0.laneCode = lane
                    $0.plate = plate
                }
                return .init(
                    seq: seq, kind: "plate", deviceTime: Date(), late: false, body: ByteBuffer(bytes: try event.serializedBytes() as [UInt8]),
                    event: event)
            }
            // Plate read → decision committed, every lane busy at once.
            let started = ContinuousClock.now
            let gates = try await withThrowingTaskGroup(of: (Histogram<UInt64>, Int).self) { group in
                for (index, device) in barriers.enumerated() {
                    group.addTask {
                        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                        var opened = 0
                        var seq: Int64 = 0
                        for car in 0..<cars {
                            for lane in ["in\(index)", "out\(index)"] {
                                seq += 1
                                let event = try read(device, seq: seq, lane: lane, plate: plate(index, car))
                                let t0 = ContinuousClock.now
                                let stored = try await gate.ingest(
                                    .init(device: device, generation: 1, events: [event], access: [], upTo: seq), tenant: demo.tenant)
                                let elapsed = ContinuousClock.now - t0
                                histogram.record(
                                    UInt64(
                                        clamping: max(0, elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
                                )
                                if case .gate(let decision)? = stored?.replies.first?.kind, decision.open { opened += 1 }
                            }
                        }
                        return (histogram, opened)
                    }
                }
                var total = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                var opened = 0
                for try await (histogram, count) in group {
                    total.add(histogram)
                    opened += count
                }
                return (total, opened)
            }
            let gateSeconds = (ContinuousClock.now - started).seconds
            // The same reads as plain SQL: lists, permit, visitor car, open session, rule — one
            // transaction per read, as many at once.
            let plainStarted = ContinuousClock.now
            let plain = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
                for index in 0..<lanes {
                    group.addTask {
                        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                        for car in 0..<cars {
                            for _ in 0..<2 {
                                let t0 = ContinuousClock.now
                                try await app.database.tenantTransaction(demo.tenant) { connection in
                                    let p = plate(index, car)
                                    try await connection.run(
                                        """
                                        SELECT (SELECT count(*) FROM parking_lists WHERE community_id = \(demo.community.uuid) AND plate = \(p)
                                                  AND removed_at IS NULL),
                                               (SELECT count(*) FROM parking_permits WHERE community_id = \(demo.community.uuid) AND plate = \(p)
                                                  AND revoked_at IS NULL),
                                               (SELECT count(*) FROM parking_visitor_cars WHERE community_id = \(demo.community.uuid)
                                                  AND plate = \(p) AND cancelled_at IS NULL),
                                               (SELECT count(*) FROM parking_sessions WHERE plate = \(p) AND exited_at IS NULL),
                                               (SELECT max(version) FROM parking_fee_rules)
                                        """, logger: logger)
                                }
                                let elapsed = ContinuousClock.now - t0
                                histogram.record(
                                    UInt64(
                                        clamping: max(0, elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
                                )
                            }
                        }
                        return histogram
                    }
                }
                var total = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                for try await histogram in group { total.add(histogram) }
                return total
            }
            let plainSeconds = (ContinuousClock.now - plainStarted).seconds

            // The alarm storm: every panel sends `events` identical fire events for its point at
            // once, each in its own transaction, as fast as the pool allows.
            let panels: [DeviceID] = try await app.database.tenantTransaction(demo.tenant) { connection in
                var made: [DeviceID] = []
                for index in 0..<detectors {
                    let (device, _) = try await store.register(
                        community: demo.community, serial: "FIRE-\(index)", kind: "detector", name: "报警控制器 \(index)", by: manager,
                        on: connection, logger: logger)
                    made.append(device.id)
                }
                return made
            }
            let fire = IngestQueue(store: store, handler: FireHandler(), logger: logger)
            let stormStarted = ContinuousClock.now
            let storm = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
                for device in panels {
                    group.addTask {
                        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                        for seq in 1...Int64(events) {
                            var event = Linli_Device_V1_Event()
                            event.seq = UInt64(clamping: seq)
                            event.deviceTimeMs = Int64(exactly: (Date().timeIntervalSince1970 * 1000).rounded(.down)) ?? 0
                            event.fire = .with {
                                $0.pointCode = "1-001"
                                $0.kind = .fire
                            }
                            let incoming = DeviceStore.IncomingEvent(
                                seq: seq, kind: "fire", deviceTime: Date(), late: false,
                                body: ByteBuffer(bytes: try event.serializedBytes() as [UInt8]), event: event)
                            let t0 = ContinuousClock.now
                            _ = try await fire.ingest(
                                .init(device: device, generation: 1, events: [incoming], access: [], upTo: seq), tenant: demo.tenant)
                            let elapsed = ContinuousClock.now - t0
                            histogram.record(Self.micros(elapsed))
                        }
                        return histogram
                    }
                }
                var total = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                for try await histogram in group { total.add(histogram) }
                return total
            }
            let stormSeconds = (ContinuousClock.now - stormStarted).seconds
            let (alarms, occurrences, notices): (Int64, Int64, Int64) = try await app.database.tenantTransaction(demo.tenant) { connection in
                let rows = try await connection.run(
                    """
                    SELECT count(*), coalesce(sum(occurrences), 0)::int8,
                           (SELECT count(*) FROM outbox WHERE topic = 'device.alarm')
                    FROM device_alarms WHERE type = 'fire'
                    """, logger: logger)
                for try await row in rows.decode((Int64, Int64, Int64).self) { return row }
                return (0, 0, 0)
            }
            // Telemetry: every energy device one reading a second, paced, through the group commit,
            // with a rule evaluated on every reading; beside COPY of as many rows.
            let meters: [DeviceID] = try await app.database.tenantTransaction(demo.tenant) { connection in
                var made: [DeviceID] = []
                for index in 0..<energyDevices {
                    let (device, _) = try await store.register(
                        community: demo.community, serial: "PUMP-\(index)", kind: "energy", name: "水泵 \(index)", by: manager,
                        on: connection, logger: logger)
                    made.append(device.id)
                }
                _ = try await AlarmStore().setRule(
                    .init(
                        id: UUIDv7.make(), community: demo.community, deviceKind: "energy", metric: "pump.pressure_kpa", above: true,
                        threshold: 10_000_000, durationSeconds: 600, repeatCount: 0, clearThreshold: 9_000_000, severity: "major",
                        name: "pressure_high"),
                    on: connection, logger: logger)
                return made
            }
            let energy = IngestQueue(store: store, handler: TelemetryHandler(), logger: logger)
            let energyStarted = ContinuousClock.now
            let readings = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
                for (index, device) in meters.enumerated() {
                    group.addTask {
                        var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
                        // Spread the devices over the second, as real clocks are.
                        try await Task.sleep(for: .milliseconds(index * 1_000 / max(1, energyDevices)))
                        let first = ContinuousClock.now
                        for second in 0..<energySeconds {
                            let due = first + .seconds(second)
                            if ContinuousClock.now < due { try await Task.sleep(until: due) }
                            var event = Linli_Device_V1_Event()
                            let seq = Int64(second + 1)
                            event.seq = UInt64(clamping: seq)
                            event.deviceTimeMs = Int64(exactly: (Date().timeIntervalSince1970 * 1000).rounded(.down)) ?? 0
                            event.telemetry = .with {
                                $0.metric = "pump.pressure_kpa"
                                $0.valueMilli = 400_000 + Int64(clamping: second % 50) * 1_000
                            }
                            let incoming = DeviceStore.IncomingEvent(
                                seq: seq, kind: "telemetry", deviceTime: Date(), late: false,
                                body: ByteBuffer(bytes: try event.serializedBytes() as [UInt8]), event: event)
                            let t0 = ContinuousClock.now
                            _ = try await energy.ingest(
                                .init(device: device, generation: 1, events: [incoming], access: [], upTo: seq), tenant: demo.tenant)
                            histogram.record(Self.micros(ContinuousClock.now - t0))
                        }
                        return histogram
                    }
                }
                var total = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
                for try await histogram in group { total.add(histogram) }
                return total
            }
            let energySecondsTaken = (ContinuousClock.now - energyStarted).seconds
            let stored: Int64 = try await app.database.tenantTransaction(demo.tenant) { connection in
                for try await n in try await connection.run("SELECT count(*) FROM telemetry", logger: logger).decode(Int64.self) { return n }
                return 0
            }
            let copyRate = try await Self.copyTelemetry(app, tenant: demo.tenant, devices: meters, rows: energyDevices * energySeconds)
            let (histogram, opened) = gates
            let reads = lanes * cars * 2
            return [
                "lanes=\(lanes)", "plate_reads=\(reads)", "opened=\(opened)",
                "decisions_per_s=\(String(format: "%.0f", Double(reads) / gateSeconds))",
                "decision_p50_ms=\(Self.ms(histogram.valueAtPercentile(50)))",
                "decision_p99_ms=\(Self.ms(histogram.valueAtPercentile(99)))",
                "plain_sql_reads_per_s=\(String(format: "%.0f", Double(reads) / plainSeconds))",
                "plain_sql_p50_ms=\(Self.ms(plain.valueAtPercentile(50)))",
                "plain_sql_p99_ms=\(Self.ms(plain.valueAtPercentile(99)))",
                "decision_to_plain_p99_ratio=\(String(format: "%.2f", Double(histogram.valueAtPercentile(99)) / Double(max(1, plain.valueAtPercentile(99)))))",
                "fire_panels=\(detectors)", "fire_events=\(detectors * events)", "fire_alarms=\(alarms)", "fire_occurrences=\(occurrences)",
                "fire_notices_queued=\(notices)", "fire_events_per_s=\(String(format: "%.0f", Double(detectors * events) / stormSeconds))",
                "fire_event_to_outbox_p50_ms=\(Self.ms(storm.valueAtPercentile(50)))",
                "fire_event_to_outbox_p99_ms=\(Self.ms(storm.valueAtPercentile(99)))",
                "energy_devices=\(energyDevices)", "energy_offered_per_s=\(energyDevices)", "energy_rows_committed=\(stored)",
                "energy_rows_per_s=\(String(format: "%.0f", Double(stored) / energySecondsTaken))",
                "energy_reading_to_commit_p50_ms=\(Self.ms(readings.valueAtPercentile(50)))",
                "energy_reading_to_commit_p99_ms=\(Self.ms(readings.valueAtPercentile(99)))",
                "copy_rows_per_s=\(String(format: "%.0f", copyRate))",
                "energy_to_copy_ratio=\(String(format: "%.3f", Double(stored) / energySecondsTaken / max(1, copyRate)))",
            ].joined(separator: " ")
        }
    }
}
