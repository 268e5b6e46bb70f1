import Foundation
import LinliAPI
import LinliBilling
import LinliCore
import LinliDevices
import LinliTenancy
import Logging
import PostgresNIO

/// Plate reads from barrier cameras, inside the transaction that stores them (the gateway's
/// `DeviceEventHandler`): each read is decided once, its session opened or closed, its coupons
/// redeemed, and a live read answered with a `GateDecision` after COMMIT.
///
/// - The same read redelivered is never seen here twice (the gateway stores an event once).
/// - A second read of the same plate at the same lane within the lot's `duplicate_read_seconds`
///   after a read that opened is a duplicate: the same answer, nothing else happens. A read
///   after a refusal is decided afresh (the driver may have paid meanwhile).
/// - A read flushed late from an offline lane (device time over a minute old) gets no answer:
///   the lane decided on its own. A late exit with no open session leaves a closed session
///   without an entry; the late entry that follows fills it in instead of opening a new stay,
///   so the stay is never billed twice.
/// - Two exits of one car at once serialise on the session row (FOR UPDATE), so its coupons
///   are redeemed once and the session closes once.
public struct ParkingGate: DeviceEventHandler {
    public init() {}

    public func handles(_ event: Linli_Device_V1_Event) -> Bool {
        if case .plate = event.body { return true }
        return false
    }

    public func handle(_ events: [DeviceStore.IncomingEvent], device: DeviceID, on connection: PostgresConnection, logger: Logger)
        async throws -> [Linli_Device_V1_ServerMessage]
    {
        var replies: [Linli_Device_V1_ServerMessage] = []
        for incoming in events {
            guard case .plate(let read) = incoming.event.body else { continue }
            // A read this code cannot decide must not block the lane's stream: its work is rolled
            // back to the savepoint, the read is stored as an error, and the lane is told to ask
            // the booth. A lost connection still fails the whole batch (it is resent).
            try await connection.run("SAVEPOINT parking_read", logger: logger)
            var decision: Linli_Device_V1_GateDecision
            do {
                decision = try await Self.process(
                    read, seq: incoming.seq, at: incoming.deviceTime, late: incoming.late, device: device, on: connection, logger: logger)
                try await connection.run("RELEASE SAVEPOINT parking_read", logger: logger)
            } catch let error as PSQLError where error.code == .server {
                logger.error("plate read not decided", metadata: ["device.id": "\(device)", "seq": "\(incoming.seq)", "error": "\(error)"])
                try await connection.run("ROLLBACK TO SAVEPOINT parking_read", logger: logger)
                decision = Linli_Device_V1_GateDecision()
                decision.seq = UInt64(clamping: incoming.seq)
                decision.laneCode = read.laneCode
                decision.reason = "error"
                decision.ledLines = ["请联系岗亭"]
                decision.voice = "请联系岗亭"
                try await Self.record(
                    device: device, seq: incoming.seq, lane: nil, laneCode: read.laneCode, plate: String(read.plate.prefix(32)),
                    direction: .entry, time: incoming.deviceTime, late: incoming.late, opened: false, reason: "error", due: 0, session: nil,
                    duplicate: false, on: connection, logger: logger)
            }
            if !incoming.late { replies.append(.with { $0.gate = decision }) }
        }
        return replies
    }

    /// The lane a device reported, with its lot's settings.
    struct LaneFacts {
        var id: UUID
        var lot: UUID
        var community: CommunityID
        var direction: GateDecision.Direction
        var lane: GateDecision.Lane
        var payWindowMinutes: Int
        var visitorFreeMinutes: Int
        var duplicateSeconds: Int
        var zone: String
    }

    static func lane(device: DeviceID, code: String, on connection: PostgresConnection, logger: Logger) async throws -> LaneFacts? {
        let rows = try await connection.run(
            """
            SELECT l.id, l.lot_id, l.community_id, l.direction, l.temp_cars_enter, l.charges, l.reentry, l.exit_without_entry,
                   lot.pay_window_minutes, lot.visitor_free_minutes, lot.duplicate_read_seconds, c.time_zone
            FROM parking_lanes l JOIN parking_lots lot ON lot.id = l.lot_id JOIN communities c ON c.id = l.community_id
            WHERE l.device_id = \(device.uuid) AND l.code = \(code)
            """, logger: logger)
        for try await row in rows.decode((UUID, UUID, UUID, String, Bool, Bool, Bool, Bool, Int32, Int32, Int32, String).self) {
            return LaneFacts(
                id: row.0, lot: row.1, community: CommunityID(row.2), direction: row.3 == "exit" ? .exit : .entry,
                lane: GateDecision.Lane(tempCarsEnter: row.4, charges: row.5, reentry: row.6, exitWithoutEntry: row.7),
                payWindowMinutes: Int(clamping: row.8), visitorFreeMinutes: Int(clamping: row.9), duplicateSeconds: Int(clamping: row.10),
                zone: row.11)
        }
        return nil
    }

    static func process(
        _ read: Linli_Device_V1_PlateEvent, seq: Int64, at time: Date, late: Bool, device: DeviceID, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Linli_Device_V1_GateDecision {
        var answer = Linli_Device_V1_GateDecision()
        answer.seq = UInt64(clamping: seq)
        answer.laneCode = read.laneCode
        let plate = Input.normalizedPlate(read.plate)
        let lane = try await Self.lane(device: device, code: read.laneCode, on: connection, logger: logger)
        guard let plate, let lane else {
            let reason = lane == nil ? "unknown_lane" : "unreadable"
            answer.reason = reason
            answer.ledLines = [plate ?? "未识别车牌", "请联系岗亭"]
            answer.voice = "请联系岗亭"
            try await record(
                device: device, seq: seq, lane: lane, laneCode: read.laneCode, plate: plate ?? String(read.plate.prefix(32)),
                direction: lane?.direction ?? .entry, time: time, late: late, opened: false, reason: reason, due: 0, session: nil,
                duplicate: false, on: connection, logger: logger)
            return answer
        }
        // A duplicate of a read that opened: the same answer.
        let earlier = try await connection.run(
            """
            SELECT reason, session_id FROM parking_reads
            WHERE lane_id = \(lane.id) AND plate = \(plate) AND opened AND NOT duplicate
              AND device_time BETWEEN \(time.addingTimeInterval(-Double(lane.duplicateSeconds))) AND \(time.addingTimeInterval(Double(lane.duplicateSeconds)))
            ORDER BY device_time DESC LIMIT 1
            """, logger: logger)
        for try await (reason, session) in earlier.decode((String, UUID?).self) {
            answer.open = true
            answer.reason = reason
            answer.ledLines = [plate]
            answer.sessionID = session?.uuidString.lowercased() ?? ""
            try await record(
                device: device, seq: seq, lane: lane, laneCode: read.laneCode, plate: plate, direction: lane.direction, time: time, late: late,
                opened: true, reason: reason, due: 0, session: session, duplicate: true, on: connection, logger: logger)
            return answer
        }
        let offset = TimeZone(identifier: lane.zone)?.secondsFromGMT(for: time) ?? 28_800
        var facts = try await ParkingFacts.load(
            plate: plate, lot: lane.lot, community: lane.community, at: time, direction: lane.direction, on: connection, logger: logger)
        var decisionFacts = GateDecision.Facts(
            direction: lane.direction, at: time, plate: plate, lane: lane.lane, blacklisted: facts.blacklisted, whitelisted: facts.whitelisted,
            permit: facts.permit?.decision, reservation: facts.reservation?.kind,
            visitorFreeMinutes: facts.visitor != nil ? lane.visitorFreeMinutes : nil,
            session: facts.session?.decision, rule: facts.rule?.rule, coupons: facts.coupons.map(\.fee), payWindowMinutes: lane.payWindowMinutes,
            utcOffsetSeconds: offset)
        if late {
            return try await reconcileLate(
                plate: plate, lane: lane, facts: &facts, decisionFacts: &decisionFacts, read: read, seq: seq, time: time, device: device,
                answer: answer, on: connection, logger: logger)
        }
        let outcome = GateDecision.decide(decisionFacts)
        var session = facts.session?.id
        if outcome.open {
            switch lane.direction {
            case .entry:
                if facts.session == nil {
                    session = try await open(
                        plate: plate, lane: lane, outcome: outcome, facts: facts, at: time, on: connection, logger: logger)
                }
            case .exit:
                if let open = facts.session {
                    try await close(open, lane: lane, outcome: outcome, facts: facts, at: time, on: connection, logger: logger)
                } else {
                    session = try await orphanExit(plate: plate, lane: lane, at: time, on: connection, logger: logger)
                }
            }
        }
        try await record(
            device: device, seq: seq, lane: lane, laneCode: read.laneCode, plate: plate, direction: lane.direction, time: time, late: false,
            opened: outcome.open, reason: outcome.reason.rawValue, due: outcome.dueFen, session: session, duplicate: false,
            on: connection, logger: logger)
        answer.open = outcome.open
        answer.reason = outcome.reason.rawValue
        answer.ledLines = Array(outcome.led.prefix(4).map { String($0.prefix(96)) })
        answer.voice = outcome.voice
        answer.dueFen = outcome.dueFen
        answer.sessionID = session?.uuidString.lowercased() ?? ""
        return answer
    }

    /// A read the lane decided offline: recorded, and the sessions made to agree with it.
    static func reconcileLate(
        plate: String, lane: LaneFacts, facts: inout ParkingFacts, decisionFacts: inout GateDecision.Facts,
        read: Linli_Device_V1_PlateEvent, seq: Int64, time: Date, device: DeviceID, answer: Linli_Device_V1_GateDecision,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Linli_Device_V1_GateDecision {
        var session = facts.session?.id
        var reason = "offline"
        switch lane.direction {
        case .entry:
            // An exit of this car read after this entry but stored first: fill in its entry.
            let orphan = try await connection.run(
                """
                UPDATE parking_sessions SET entered_at = \(time), entry_lane_id = \(lane.id)
                WHERE id = (SELECT id FROM parking_sessions WHERE lot_id = \(lane.lot) AND plate = \(plate) AND entered_at IS NULL
                              AND exited_at >= \(time) ORDER BY exited_at LIMIT 1 FOR UPDATE)
                RETURNING id
                """, logger: logger)
            var filled: UUID?
            for try await id in orphan.decode(UUID.self) { filled = id }
            if let filled {
                session = filled
                reason = "reconciled"
            } else if facts.session == nil {
                decisionFacts.direction = .entry
                let outcome = GateDecision.decide(decisionFacts)
                session = try await open(plate: plate, lane: lane, outcome: outcome, facts: facts, at: time, on: connection, logger: logger)
            } else {
                reason = "already_inside"
            }
        case .exit:
            if let open = facts.session, open.enteredAt <= time {
                // The lane let the car out offline: the stay ends here, priced but not charged again.
                let outcome = GateDecision.decide(decisionFacts)
                var offline = outcome
                offline.open = true
                try await close(open, lane: lane, outcome: offline, facts: facts, at: time, on: connection, logger: logger)
            } else {
                session = try await orphanExit(plate: plate, lane: lane, at: time, on: connection, logger: logger)
                reason = "exit_before_entry"
            }
        }
        try await record(
            device: device, seq: seq, lane: lane, laneCode: read.laneCode, plate: plate, direction: lane.direction, time: time, late: true,
            opened: true, reason: reason, due: 0, session: session, duplicate: false, on: connection, logger: logger)
        var answer = answer
        answer.open = true
        answer.reason = reason
        return answer
    }

    static func open(
        plate: String, lane: LaneFacts, outcome: GateDecision.Outcome, facts: ParkingFacts, at time: Date, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> UUID? {
        let id = UUIDv7.make()
        let permit = outcome.carClass == .permit || outcome.carClass == .monthly ? facts.permit : nil
        let reservation = outcome.reason == .reserved ? facts.reservation : nil
        let rows = try await connection.run(
            """
            INSERT INTO parking_sessions (id, community_id, lot_id, plate, car_class, permit_id, space_id, free_minutes, entered_at,
                                          entry_lane_id, rule_id)
            VALUES (\(id), \(lane.community.uuid), \(lane.lot), \(plate), \(outcome.carClass.rawValue), \(permit?.id), \(permit?.space ?? reservation?.space),
                    \(outcome.carClass == .visitor ? lane.visitorFreeMinutes : 0), \(time), \(lane.id), \(facts.rule?.id))
            ON CONFLICT (lot_id, plate) WHERE exited_at IS NULL DO NOTHING
            RETURNING id
            """, logger: logger)
        var opened: UUID?
        for try await row in rows.decode(UUID.self) { opened = row }
        if let opened, let reservation {
            try await connection.run(
                "UPDATE parking_reservations SET used_at = \(time), session_id = \(opened) WHERE id = \(reservation.id)", logger: logger)
        }
        if opened != nil {
            try await MetricDelta.record(.parkingEntries, delta: 1, community: lane.community, on: connection, logger: logger)
        }
        return opened
    }

    /// Closes the session at `time`, redeeming the coupons the quote used.
    static func close(
        _ session: ParkingFacts.OpenSession, lane: LaneFacts, outcome: GateDecision.Outcome, facts: ParkingFacts, at time: Date,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        let couponOff = try await redeem(
            outcome.quote?.used ?? [], session: session.id, community: lane.community, at: time, on: connection, logger: logger)
        try await connection.run(
            """
            UPDATE parking_sessions SET exited_at = \(time), exit_lane_id = \(lane.id), gross_fen = GREATEST(gross_fen, \(outcome.quote?.grossFen ?? 0)),
                                        coupon_off_fen = coupon_off_fen + \(couponOff)
            WHERE id = \(session.id) AND exited_at IS NULL
            """, logger: logger)
        try await MetricDelta.record(.parkingExits, delta: 1, community: lane.community, on: connection, logger: logger)
    }

    /// Marks the coupons a quote used as used by the session (each once: a coupon another
    /// transaction used meanwhile is skipped) and moves their prices from the merchants'
    /// liabilities to revenue; returns the fen they took off.
    static func redeem(
        _ used: [(id: UUID, offFen: Int64)], session: UUID, community: CommunityID, at time: Date, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Int64 {
        guard !used.isEmpty else { return 0 }
        let redeemed = try await connection.run(
            """
            UPDATE parking_coupons c SET status = 'used', session_id = \(session), used_at = \(time), off_fen = u.off
            FROM unnest(\(used.map(\.id))::uuid[], \(used.map(\.offFen))::int8[]) AS u(id, off), parking_coupon_batches b
            WHERE c.id = u.id AND c.status = 'unused' AND b.id = c.batch_id
            RETURNING c.off_fen, b.merchant_id, b.price_fen
            """, logger: logger)
        var couponOff: Int64 = 0
        var prices: [(merchant: UUID, fen: Int64)] = []
        for try await (off, merchant, price) in redeemed.decode((Int64, UUID, Int64).self) {
            couponOff += off
            prices.append((merchant, price))
        }
        if let entry = try await ParkingLedger.redeemCoupons(
            prices, community: community, memo: "parking session \(session.uuidString.lowercased())", on: connection, logger: logger)
        {
            try await connection.run(
                "UPDATE parking_coupons SET redeem_entry_id = \(entry) WHERE session_id = \(session) AND redeem_entry_id IS NULL",
                logger: logger)
            try await MetricDelta.record(
                .parkingRevenueFen, delta: prices.reduce(0) { $0 + $1.fen }, community: community, on: connection, logger: logger)
        }
        return couponOff
    }

    /// An exit with no open session: a closed session without an entry, which a late entry fills in.
    static func orphanExit(plate: String, lane: LaneFacts, at time: Date, on connection: PostgresConnection, logger: Logger) async throws
        -> UUID
    {
        let id = UUIDv7.make()
        try await connection.run(
            """
            INSERT INTO parking_sessions (id, community_id, lot_id, plate, car_class, exited_at, exit_lane_id)
            VALUES (\(id), \(lane.community.uuid), \(lane.lot), \(plate), 'temp', \(time), \(lane.id))
            """, logger: logger)
        return id
    }

    static func record(
        device: DeviceID, seq: Int64, lane: LaneFacts?, laneCode: String, plate: String, direction: GateDecision.Direction, time: Date,
        late: Bool, opened: Bool, reason: String, due: Int64, session: UUID?, duplicate: Bool, on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        try await connection.run(
            """
            INSERT INTO parking_reads (device_id, seq, community_id, lot_id, lane_id, lane_code, plate, direction, device_time, late,
                                       opened, reason, due_fen, session_id, duplicate)
            SELECT \(device.uuid), \(seq), d.community_id, \(lane?.lot), \(lane?.id), \(laneCode), \(plate), \(direction.rawValue), \(time),
                   \(late), \(opened), \(reason), \(due), \(session), \(duplicate)
            FROM devices d WHERE d.id = \(device.uuid)
            ON CONFLICT (device_id, seq) DO NOTHING
            """, logger: logger)
    }
}
