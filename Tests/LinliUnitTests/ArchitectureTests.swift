import Foundation
import Testing

/// Fails when a shared fact is written again outside its owner. Each rule names the pattern,
/// the owner files where it belongs, and why.
@Suite("Architecture: one owner for each shared fact")
struct ArchitectureTests {
    struct Rule: Sendable, CustomStringConvertible {
        var pattern: String
        var owners: [String]
        var why: String
        var description: String { pattern }
    }

    static let rules: [Rule] = [
        Rule(
            pattern: #"Asia/[A-Z]"#, owners: ["Tenancy/BusinessDay.swift"],
            why: "a community's day comes from its time_zone: BusinessDay in Swift, community_today()/local_today() in SQL"),
        Rule(
            pattern: #"move_out\s+IS\s+NULL"#, owners: ["Tenancy/Residency.swift", "Tenancy/Migrations/tenant/0017_shared_facts.sql"],
            why: "who lives in a room is Residency / resides_on(move_in, move_out, day)"),
        Rule(pattern: #"INSERT\s+INTO\s+outbox"#, owners: ["Tenancy/Outbox.swift"], why: "messages go through Outbox.enqueue with a declared Topic"),
        Rule(
            pattern: #"INSERT\s+INTO\s+ledger_(transfers|accounts)"#, owners: ["Sources/LinliBilling/Ledger.swift"],
            why: "money moves only through Ledger"),
        Rule(
            pattern: #"FROM\s+rooms\b"#, owners: ["Sources/LinliBaseData/", "Tenancy/"],
            why: "other modules read rooms through Scope, community_rooms() and room_label_of()"),
        Rule(pattern: #"\|\|\s*r\.unit\s*\|\|"#, owners: [], why: "a room's label is room_label() / RoomLabel.make"),
        Rule(
            pattern: #"bill_late_fee_fen|late_fee_per_10k_daily\s*\*"#, owners: ["Tenancy/Migrations/tenant/0017_shared_facts.sql"],
            why: "the late fee is LateFee.due"),
        Rule(
            pattern: #"\.requireScope\("#, owners: ["Tenancy/Scope.swift", "Sources/LinliCore/"],
            why: "may this principal act on community / building / room X is Scope's question"),
    ]

    /// Benchmark fixtures write rows in bulk on purpose; they are not product code.
    static let fixtures = ["Sources/linli/Bench.swift", "Sources/linli/BenchBilling.swift"]

    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Product Swift files and the migrations written since the owners existed (0017 on).
    static func files() throws -> [(path: String, text: String)] {
        var found: [(String, String)] = []
        for folder in ["Sources", "Tenancy"] {
            let base = root.appendingPathComponent(folder)
            guard let walker = FileManager.default.enumerator(atPath: base.path) else { continue }
            for case let relative as String in walker {
                let path = folder + "/" + relative
                if path.hasPrefix("Sources/LinliAPI/") || fixtures.contains(path) { continue }
                if path.hasSuffix(".sql") {
                    let name = (relative as NSString).lastPathComponent
                    guard let number = Int(name.prefix(4)), number >= 17 else { continue }
                } else if !path.hasSuffix(".swift") {
                    continue
                }
                found.append((path, try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)))
            }
        }
        return found
    }

    @Test("no shared fact is re-implemented outside its owner", arguments: rules)
    func ownerOnly(rule: Rule) throws {
        let files = try Self.files()
        #expect(files.count > 50, "the scan found too few files under \(Self.root.path)")
        let regex = try NSRegularExpression(pattern: rule.pattern, options: [.caseInsensitive])
        for (path, text) in files where !rule.owners.contains(where: { path.hasPrefix($0) }) {
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = String(line)
                if regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil {
                    Issue.record("\(path):\(number + 1): \(rule.pattern) belongs in \(rule.owners) — \(rule.why)")
                }
            }
        }
    }
}
