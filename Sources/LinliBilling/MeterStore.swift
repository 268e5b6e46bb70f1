import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Meters per room and their readings, in the caller's tenant transaction. Values are hundredths
/// of a unit; a reading's usage is its rise over the previous one, and a reading lower than the
/// last is refused unless it starts a replacement meter.
public struct MeterStore: Sendable {
    public init() {}

    public enum Kind: String, Sendable, CaseIterable { case water, electricity, gas }

    public struct Reading: Sendable, Equatable {
        public var id: UUID
        public var room: RoomID
        public var kind: Kind
        public var readOn: String
        public var valueCenti: Int64
        public var previousCenti: Int64?
        public var usageCenti: Int64
        public var replacement: Bool
    }

    public struct NewReading: Sendable {
        public var room: RoomID
        public var kind: Kind
        public var readOn: String
        public var valueCenti: Int64
        public var replacement: Bool
        public var oldFinalCenti: Int64
        public init(room: RoomID, kind: Kind, readOn: String, valueCenti: Int64, replacement: Bool, oldFinalCenti: Int64) {
            self.room = room
            self.kind = kind
            self.readOn = readOn
            self.valueCenti = valueCenti
            self.replacement = replacement
            self.oldFinalCenti = oldFinalCenti
        }
    }

    /// The usage a reading records after `last` (value, date), or the problem with it.
    static func usage(of new: NewReading, after last: (value: Int64, on: String)?) throws(LinliError) -> (previous: Int64?, usage: Int64) {
        guard let last else {
            return (nil, 0)  // a meter's first reading is its baseline
        }
        guard new.readOn > last.on else { throw .invalid("read_on", "must be after the last reading on \(last.on)") }
        if new.replacement {
            guard new.oldFinalCenti >= last.value else {
                throw .invalid("old_final_centi", "must not be lower than the last reading \(last.value)")
            }
            return (last.value, new.oldFinalCenti - last.value)
        }
        guard new.valueCenti >= last.value else {
            throw LinliError(
                .failedPrecondition,
                "value_centi: lower than the last reading \(last.value) on \(last.on); "
                    + "record a meter replacement if the meter was changed", field: "value_centi")
        }
        return (last.value, new.valueCenti - last.value)
    }

    public func record(_ new: NewReading, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Reading {
        let community = try await FeeStore.community(ofRoom: new.room, connection, logger)
        try Scope.requireCommunity(principal, community)
        let meter = try await Self.meter(community, new.room, new.kind, connection, logger)
        let last = try await connection.run(
            """
            SELECT value_centi, read_on::text FROM meter_readings WHERE meter_id = \(meter) ORDER BY read_on DESC LIMIT 1
            """, logger: logger)
        var previous: (value: Int64, on: String)?
        for try await row in last.decode((Int64, String).self) { previous = row }
        let (before, usage) = try Self.usage(of: new, after: previous)
        let id = UUIDv7.make()
        try await connection.run(
            """
            INSERT INTO meter_readings (id, meter_id, read_on, value_centi, previous_centi, usage_centi, replacement, recorded_by)
            VALUES (\(id), \(meter), \(new.readOn)::date, \(new.valueCenti), \(before), \(usage), \(new.replacement), \(principal.subjectID.uuid))
            """, logger: logger)
        return Reading(
            id: id, room: new.room, kind: new.kind, readOn: new.readOn, valueCenti: new.valueCenti, previousCenti: before,
            usageCenti: usage, replacement: new.replacement)
    }

    /// Readings from CSV lines, all or nothing.
    public func importReadings(
        community: CommunityID, lines: [String], by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> CSVSheet {
        try Scope.requireCommunity(principal, community)
        try await FeeStore.requireCommunity(community, connection, logger)
        var rooms: [String: UUID] = [:]
        for try await (id, building, unit, number) in try await connection.run(
            """
            SELECT room_id, building, unit, number FROM community_rooms(\(community.uuid))
            """, logger: logger
        ).decode((UUID, String, String, String).self) {
            rooms["\(building)\u{1F}\(unit)\u{1F}\(number)"] = id
        }
        var lastByMeter: [String: (value: Int64, on: String)] = [:]
        for try await (room, kind, value, on) in try await connection.run(
            """
            SELECT DISTINCT ON (m.id) m.room_id, m.kind, r.value_centi, r.read_on::text
            FROM meters m JOIN meter_readings r ON r.meter_id = m.id WHERE m.community_id = \(community.uuid)
            ORDER BY m.id, r.read_on DESC
            """, logger: logger
        ).decode((UUID, String, Int64, String).self) {
            lastByMeter["\(room)\(kind)"] = (value, on)
        }
        var planned: [(room: UUID, kind: Kind, readOn: String, value: Int64, previous: Int64?, usage: Int64, replacement: Bool)] = []
        var sheet = CSVSheet(
            name: "meter readings", columns: ["building", "unit", "number", "kind", "read_on", "value", "replacement", "old_final"],
            optional: ["unit", "replacement", "old_final"])
        sheet.read(lines) { sheet, v, line in
            let kind = sheet.field(line, "kind") { () throws(LinliError) in
                guard let kind = Kind(rawValue: (v["kind"] ?? "").lowercased()) else { throw .invalid("kind", "must be water, electricity or gas") }
                return kind
            }
            let readOn = sheet.field(line, "read_on") { () throws(LinliError) in try Input.localDate(v["read_on"] ?? "", field: "read_on") }
            let value = sheet.field(line, "value") { () throws(LinliError) in try Self.centi(v["value"] ?? "", field: "value") }
            let replacement = sheet.field(line, "replacement") { () throws(LinliError) in
                switch (v["replacement"] ?? "").lowercased() {
                case "", "no", "false", "0": return false
                case "yes", "true", "1": return true
                default: throw .invalid("replacement", "must be yes or no")
                }
            }
            let oldFinal = sheet.field(line, "old_final") { () throws(LinliError) in
                (v["old_final"] ?? "").isEmpty ? Int64(0) : try Self.centi(v["old_final"] ?? "", field: "old_final")
            }
            let room = rooms["\(v["building"] ?? "")\u{1F}\(v["unit"] ?? "")\u{1F}\(v["number"] ?? "")"]
            if room == nil { sheet.fail(line, "number", "no room \(v["building"] ?? "")\(v["unit"] ?? "")\(v["number"] ?? "") in this community") }
            guard let kind, let readOn, let value, let replacement, let oldFinal, let room else { return }
            let key = "\(room)\(kind.rawValue)"
            let new = NewReading(room: RoomID(room), kind: kind, readOn: readOn, valueCenti: value, replacement: replacement, oldFinalCenti: oldFinal)
            guard let (previous, usage) = sheet.field(line, "value", { () throws(LinliError) in try Self.usage(of: new, after: lastByMeter[key]) })
            else { return }
            lastByMeter[key] = (value, readOn)
            planned.append((room, kind, readOn, value, previous, usage, replacement))
        }
        guard sheet.errorCount == 0 else { return sheet }
        try await connection.run(
            """
            INSERT INTO meters (id, community_id, room_id, kind)
            SELECT uuid_v7(), \(community.uuid), room, kind FROM unnest(\(planned.map { $0.room })::uuid[], \(planned.map { $0.kind.rawValue })::text[]) AS t (room, kind)
            GROUP BY room, kind ON CONFLICT (room_id, kind) DO NOTHING
            """, logger: logger)
        try await connection.run(
            """
            INSERT INTO meter_readings (id, meter_id, read_on, value_centi, previous_centi, usage_centi, replacement, recorded_by)
            SELECT uuid_v7(), m.id, t.read_on::date, t.value, NULLIF(t.previous, -1), t.usage, t.replacement, \(principal.subjectID.uuid)
            FROM unnest(\(planned.map { $0.room })::uuid[], \(planned.map { $0.kind.rawValue })::text[], \(planned.map { $0.readOn })::text[],
                        \(planned.map { $0.value })::int8[], \(planned.map { $0.previous ?? -1 })::int8[], \(planned.map { $0.usage })::int8[],
                        \(planned.map { $0.replacement })::bool[]) AS t (room, kind, read_on, value, previous, usage, replacement)
            JOIN meters m ON m.room_id = t.room AND m.kind = t.kind
            """, logger: logger)
        return sheet
    }

    /// "1234.56" → 123456: a reading to two decimals, zero allowed.
    static func centi(_ raw: String, field: String) throws(LinliError) -> Int64 {
        if raw.trimmingCharacters(in: .whitespaces) == "0" { return 0 }
        return try Input.hundredths(raw, field: field, max: 100_000_000_000)
    }

    /// The meter of a room and kind, opened on first use and locked so readings of one meter queue.
    static func meter(
        _ community: CommunityID, _ room: RoomID, _ kind: Kind, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> UUID {
        try await connection.run(
            """
            INSERT INTO meters (id, community_id, room_id, kind) VALUES (\(UUIDv7.make()), \(community.uuid), \(room.uuid), \(kind.rawValue))
            ON CONFLICT (room_id, kind) DO NOTHING
            """, logger: logger)
        for try await id in try await connection.run(
            "SELECT id FROM meters WHERE room_id = \(room.uuid) AND kind = \(kind.rawValue) FOR UPDATE", logger: logger
        ).decode(UUID.self) {
            return id
        }
        throw LinliError(.internal, "meter vanished")
    }
}
