import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Bulk import of buildings, rooms or residents from CSV lines, all or nothing: every line is
/// checked (format, then against the community's data and the rest of the file) before
/// anything is written, and when any line is bad the report lists them and nothing changes.
public struct BaseDataImport: Sendable {
    public init() {}

    public enum Kind: String, Sendable, CaseIterable { case buildings, rooms, residents }

    public typealias LineError = CSVSheet.LineError

    public struct Report: Sendable, Equatable {
        public var committed = false
        public var rows = 0
        public var created = 0
        public var errors: [LineError] = []
        public var errorCount = 0
    }

    /// The columns of each kind; the ones that may be left empty are in `optional`.
    static let columns: [Kind: [String]] = [
        .buildings: ["building"],
        .rooms: ["building", "unit", "number", "floor", "area_m2", "kind"],
        .residents: ["name", "phone", "id_number", "building", "unit", "number", "relation", "move_in"],
    ]
    static let optional: Set<String> = ["unit", "floor", "phone", "id_number", "move_in"]

    /// Checks every line and, when all are good, writes them in one go.
    public func run(
        kind: Kind, community: CommunityID, lines: [String], by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Report {
        try Scope.requireCommunity(principal, community)
        try await BaseDataSQL.requireCommunity(community, connection, logger)
        var check = Check(kind: kind)
        check.sheet.readHeader(lines.first)
        guard check.sheet.errorCount == 0 else { return check.report }
        let known = try await Known.load(community, connection, logger)
        var plan = Plan()
        for (index, line) in lines.enumerated().dropFirst() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            check.sheet.rows += 1
            guard let values = check.sheet.values(line, number: index + 1) else { continue }
            check.row(values, line: index + 1, known: known, into: &plan)
        }
        if check.sheet.errorCount == 0 && check.sheet.rows == 0 { check.fail(2, "", "the file has a header but no rows") }
        guard check.sheet.errorCount == 0 else { return check.report }
        var report = check.report
        report.created = try await plan.write(community: community, connection, logger)
        report.committed = true
        return report
    }

    /// What the community already holds, keyed the way the file names it.
    struct Known {
        var buildings: [String: UUID] = [:]
        var rooms: [String: UUID] = [:]
        var phones: Set<String> = []

        static func roomKey(_ building: String, _ unit: String, _ number: String) -> String { "\(building)\u{1F}\(unit)\u{1F}\(number)" }

        static func load(_ community: CommunityID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Known {
            var known = Known()
            for try await (id, name) in try await connection.run(
                "SELECT id, name FROM buildings WHERE community_id = \(community.uuid)", logger: logger
            ).decode((UUID, String).self) {
                known.buildings[name] = id
            }
            for try await (id, building, unit, number) in try await connection.run(
                """
                SELECT r.id, b.name, r.unit, r.number FROM rooms r JOIN buildings b ON b.id = r.building_id WHERE r.community_id = \(community.uuid)
                """, logger: logger
            ).decode((UUID, String, String, String).self) {
                known.rooms[roomKey(building, unit, number)] = id
            }
            for try await phone in try await connection.run(
                "SELECT phone FROM residents WHERE community_id = \(community.uuid) AND phone <> ''", logger: logger
            ).decode(String.self) {
                known.phones.insert(phone)
            }
            return known
        }
    }

    /// The rows to write, in columns ready for `unnest`.
    struct Plan {
        var buildingIDs: [UUID] = [], buildingNames: [String] = []
        var roomIDs: [UUID] = [], roomBuildings: [UUID] = [], roomUnits: [String] = [], roomNumbers: [String] = []
        var roomFloors: [Int32] = [], roomAreas: [Int32] = [], roomKinds: [String] = []
        var residentIDs: [UUID] = [], residentNames: [String] = [], residentPhones: [String] = [], residentIDNumbers: [String] = []
        var stayIDs: [UUID] = [], stayResidents: [UUID] = [], stayRooms: [UUID] = [], stayRelations: [String] = [], stayMoveIns: [String] = []
        /// Within the file: building names, room keys, phone → resident id.
        var seenBuildings: Set<String> = [], seenRooms: Set<String> = [], seenPhones: [String: (UUID, String)] = [:]
        var seenStays: Set<String> = [], planned: Set<UUID> = []

        /// Sentinel for "no floor" in the floor column.
        static let noFloor = Int32.min

        func write(community: CommunityID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int {
            if !buildingIDs.isEmpty {
                try await connection.run(
                    """
                    INSERT INTO buildings (id, community_id, name)
                    SELECT id, \(community.uuid), name FROM unnest(\(buildingIDs)::uuid[], \(buildingNames)::text[]) AS t (id, name)
                    """, logger: logger)
            }
            if !roomIDs.isEmpty {
                try await connection.run(
                    """
                    INSERT INTO rooms (id, community_id, building_id, unit, number, floor, area_centi_m2, kind)
                    SELECT id, \(community.uuid), building, unit, number, NULLIF(floor, \(Self.noFloor)), area, kind
                    FROM unnest(\(roomIDs)::uuid[], \(roomBuildings)::uuid[], \(roomUnits)::text[], \(roomNumbers)::text[],
                                \(roomFloors)::int4[], \(roomAreas)::int4[], \(roomKinds)::text[]) AS t (id, building, unit, number, floor, area, kind)
                    """, logger: logger)
            }
            if !residentIDs.isEmpty {
                try await connection.run(
                    """
                    INSERT INTO residents (id, community_id, name, phone, id_number)
                    SELECT id, \(community.uuid), name, phone, id_number
                    FROM unnest(\(residentIDs)::uuid[], \(residentNames)::text[], \(residentPhones)::text[], \(residentIDNumbers)::text[])
                         AS t (id, name, phone, id_number)
                    """, logger: logger)
                try await connection.run(
                    """
                    INSERT INTO residencies (id, resident_id, room_id, relation, move_in)
                    SELECT id, resident, room, relation, coalesce(NULLIF(move_in, '')::date, community_today(\(community.uuid)))
                    FROM unnest(\(stayIDs)::uuid[], \(stayResidents)::uuid[], \(stayRooms)::uuid[], \(stayRelations)::text[],
                                \(stayMoveIns)::text[]) AS t (id, resident, room, relation, move_in)
                    """, logger: logger)
                try await connection.run(
                    """
                    UPDATE rooms SET state = \(unescaped: BaseDataSQL.occupancy)
                    WHERE id = ANY(\(Array(Set(stayRooms)))::uuid[]) AND state <> 'renovating'
                    """, logger: logger)
            }
            if !roomIDs.isEmpty {
                try await MetricDelta.record(.rooms, delta: Int64(roomIDs.count), community: community, on: connection, logger: logger)
            }
            if !residentIDs.isEmpty {
                try await MetricDelta.record(.residents, delta: Int64(residentIDs.count), community: community, on: connection, logger: logger)
            }
            return buildingIDs.count + roomIDs.count + residentIDs.count
        }
    }

    /// The checks of one file, with the report they build.
    struct Check {
        let kind: Kind
        var sheet: CSVSheet

        init(kind: Kind) {
            self.kind = kind
            sheet = CSVSheet(name: kind.rawValue, columns: BaseDataImport.columns[kind] ?? [], optional: BaseDataImport.optional)
        }

        var report: Report { Report(rows: sheet.rows, errors: sheet.errors, errorCount: sheet.errorCount) }

        mutating func fail(_ line: Int, _ column: String, _ message: String) { sheet.fail(line, column, message) }

        mutating func field<T>(_ line: Int, _ column: String, _ parse: () throws(LinliError) -> T) -> T? { sheet.field(line, column, parse) }

        mutating func row(_ v: [String: String], line: Int, known: Known, into plan: inout Plan) {
            switch kind {
            case .buildings: building(v, line: line, known: known, into: &plan)
            case .rooms: room(v, line: line, known: known, into: &plan)
            case .residents: resident(v, line: line, known: known, into: &plan)
            }
        }

        mutating func building(_ v: [String: String], line: Int, known: Known, into plan: inout Plan) {
            guard let name = field(line, "building", { () throws(LinliError) in try Input.text(v["building"] ?? "", field: "building", max: 40) })
            else { return }
            if known.buildings[name] != nil { return fail(line, "building", "already exists in this community") }
            guard plan.seenBuildings.insert(name).inserted else { return fail(line, "building", "appears earlier in the file") }
            plan.buildingIDs.append(UUIDv7.make())
            plan.buildingNames.append(name)
        }

        mutating func room(_ v: [String: String], line: Int, known: Known, into plan: inout Plan) {
            let building = field(line, "building") { () throws(LinliError) in try Input.text(v["building"] ?? "", field: "building", max: 40) }
            let unit = field(line, "unit") { () throws(LinliError) in try Input.text(v["unit"] ?? "", field: "unit", min: 0, max: 20) }
            let number = field(line, "number") { () throws(LinliError) in try Input.text(v["number"] ?? "", field: "number", max: 20) }
            let floor: Int32? = field(line, "floor") { () throws(LinliError) in
                let raw = v["floor"] ?? ""
                if raw.isEmpty { return Plan.noFloor }
                guard let floor = Int32(raw), (-10...200).contains(floor) else { throw .invalid("floor", "must be a whole number from -10 to 200") }
                return floor
            }
            let area = field(line, "area_m2") { () throws(LinliError) in try Input.hundredths(v["area_m2"] ?? "", field: "area_m2", max: 10_000_00) }
            let kind = field(line, "kind") { () throws(LinliError) in
                guard let kind = RoomStore.Kind(rawValue: (v["kind"] ?? "").lowercased()) else {
                    throw .invalid("kind", "must be one of residence, shop, office, storage")
                }
                return kind
            }
            guard let building, let unit, let number, let floor, let area, let kind else { return }
            guard let buildingID = known.buildings[building] else {
                return fail(line, "building", "no building named \(building) in this community; import buildings first")
            }
            let key = Known.roomKey(building, unit, number)
            if known.rooms[key] != nil { return fail(line, "number", "room \(building)\(unit)\(number) already exists") }
            guard plan.seenRooms.insert(key).inserted else {
                return fail(line, "number", "room \(building)\(unit)\(number) appears earlier in the file")
            }
            plan.roomIDs.append(UUIDv7.make())
            plan.roomBuildings.append(buildingID)
            plan.roomUnits.append(unit)
            plan.roomNumbers.append(number)
            plan.roomFloors.append(floor)
            plan.roomAreas.append(Int32(area))
            plan.roomKinds.append(kind.rawValue)
        }

        mutating func resident(_ v: [String: String], line: Int, known: Known, into plan: inout Plan) {
            let name = field(line, "name") { () throws(LinliError) in try Input.text(v["name"] ?? "", field: "name", max: 50) }
            let phone = field(line, "phone") { () throws(LinliError) in try Input.mobile(v["phone"] ?? "", field: "phone") }
            let idNumber = field(line, "id_number") { () throws(LinliError) in try Input.idNumber(v["id_number"] ?? "", field: "id_number") }
            let relation = field(line, "relation") { () throws(LinliError) in
                guard let relation = ResidentStore.Relation(rawValue: (v["relation"] ?? "").lowercased()) else {
                    throw .invalid("relation", "must be one of owner, renter, family")
                }
                return relation
            }
            let moveIn = field(line, "move_in") { () throws(LinliError) in
                let raw = v["move_in"] ?? ""
                return raw.isEmpty ? "" : try Input.localDate(raw, field: "move_in")
            }
            let roomKey = Known.roomKey(v["building"] ?? "", v["unit"] ?? "", v["number"] ?? "")
            let room = known.rooms[roomKey]
            if room == nil {
                fail(line, "number", "no room \(v["building"] ?? "")\(v["unit"] ?? "")\(v["number"] ?? "") in this community; import rooms first")
            }
            guard let name, let phone, let idNumber, let relation, let moveIn, let room else { return }
            var resident = UUIDv7.make()
            if !phone.isEmpty {
                if known.phones.contains(phone) {
                    return fail(line, "phone", "a resident of this community already has this phone number; add the room with MoveIn")
                }
                if let (earlier, earlierName) = plan.seenPhones[phone] {
                    // The same person on several lines: one resident living in several rooms.
                    guard earlierName == name else { return fail(line, "phone", "appears earlier in the file for \(earlierName)") }
                    resident = earlier
                } else {
                    plan.seenPhones[phone] = (resident, name)
                }
            }
            guard plan.seenStays.insert("\(resident)\(room)").inserted || phone.isEmpty else {
                return fail(line, "number", "this resident is already in this room earlier in the file")
            }
            if plan.planned.insert(resident).inserted {
                plan.residentIDs.append(resident)
                plan.residentNames.append(name)
                plan.residentPhones.append(phone)
                plan.residentIDNumbers.append(idNumber)
            }
            plan.stayIDs.append(UUIDv7.make())
            plan.stayResidents.append(resident)
            plan.stayRooms.append(room)
            plan.stayRelations.append(relation.rawValue)
            plan.stayMoveIns.append(moveIn)
        }
    }
}
