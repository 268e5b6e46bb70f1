import Foundation
import LinliCore
import Testing

@Suite("Identifiers, input and principals")
struct CoreTests {
    @Test("UUIDv7 carries version 7, the RFC variant and the time, so later ids sort after earlier ones")
    func uuidv7() {
        let early = UUIDv7.make(now: Date(timeIntervalSince1970: 1_700_000_000))
        let late = UUIDv7.make(now: Date(timeIntervalSince1970: 1_700_000_001))
        let bytes = early.uuid
        #expect(bytes.6 >> 4 == 7)
        #expect(bytes.8 >> 6 == 0b10)
        #expect(early.uuidString.lowercased() < late.uuidString.lowercased())
        #expect(Set((0..<1000).map { _ in UUIDv7.make() }).count == 1000)
    }

    @Test("bad input names the field")
    func input() throws {
        #expect(throws: LinliError.self) { try Input.text("   ", field: "title", max: 10) }
        do {
            let _: CommunityID = try Input.id("not-a-uuid", field: "community_id")
            Issue.record("accepted a bad id")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.field == "community_id")
            #expect(error.message.hasPrefix("community_id"))
        }
        #expect(try Input.text("  标题  ", field: "title", max: 10) == "标题")
        #expect(throws: LinliError.self) { try Input.text(String(repeating: "a", count: 11), field: "title", max: 10) }
        #expect(throws: LinliError.self) { try Input.requestID("") }
        #expect(throws: LinliError.self) { try Input.requestID("has space") }
        #expect(try Input.pageSize(0) == 20)
        #expect(throws: LinliError.self) { try Input.pageSize(101) }
        #expect(throws: LinliError.self) { try Input.pageSize(-1) }
    }

    @Test("a principal survives its session encoding, and garbage decodes to nil")
    func principalCodec() {
        let principal = Principal(
            tenantID: .make(), subjectID: .make(), displayName: "住户|1,二", role: .resident,
            communityIDs: [.make()], buildingIDs: [.make(), .make()])
        let issued = Date(timeIntervalSince1970: 1_750_000_000)
        let decoded = PrincipalCodec.decode(PrincipalCodec.encode(principal, issuedAt: issued))
        #expect(decoded?.principal == principal)
        #expect(decoded?.issuedAt == issued)
        #expect(PrincipalCodec.decode("v1|x|y") == nil)
        #expect(PrincipalCodec.decode("v2" + PrincipalCodec.encode(principal, issuedAt: issued).dropFirst(2)) == nil)
    }

    @Test("tenant slugs are schema-safe")
    func slugs() {
        #expect(TenantRef.isValidSlug("demo_1"))
        for bad in ["", "Demo", "a-b", "a;drop", String(repeating: "a", count: 41), "x y"] {
            #expect(!TenantRef.isValidSlug(bad), "\(bad)")
        }
    }

    @Test("only staff managers publish; residents read; operators hold no tenant permission")
    func grants() {
        #expect(Permission.noticePublish.isGranted(to: .manager))
        #expect(!Permission.noticePublish.isGranted(to: .resident))
        #expect(Permission.noticeRead.isGranted(to: .resident))
        #expect(!Permission.noticeRead.isGranted(to: .operator))
        #expect(Permission.nationalRead.isGranted(to: .operator))
        #expect(Permission.authenticated.isGranted(to: .guardian))
        for role in Role.allCases { #expect(Permission.grants[role] != nil, "\(role) has no grants entry") }
    }
}

@Suite("Page tokens")
struct PageTokenTests {
    @Test("a token round-trips to the microsecond; garbage names the field")
    func roundTrip() throws {
        let id = UUIDv7.make()
        let time = Date(timeIntervalSince1970: 1_764_000_000.123456)
        let decoded = try #require(try PageToken.decode(PageToken.encode(time, id)))
        #expect(decoded.1 == id)
        #expect(abs(decoded.0.timeIntervalSince(time)) < 0.000001)
        #expect(try PageToken.decode("") == nil)
        #expect(throws: LinliError.self) { try PageToken.decode("not a token") }
        // A token that was not issued here — the old unsigned form, a forged position, a
        // changed tag — is refused before anything reads it.
        let forged = Data("\(Int64.min)|\(id.uuidString)".utf8).base64EncodedString()
        #expect(throws: LinliError.self) { try PageToken.decode(forged) }
        let issued = PageToken.encode(time, id)
        let parts = issued.split(separator: ".")
        let tag = parts[1]
        let tampered = String(parts[0]) + "." + (tag.first == "A" ? "B" : "A") + String(tag.dropFirst())
        #expect(throws: LinliError.self) { try PageToken.decode(tampered) }
        #expect(throws: LinliError.self) { try PageToken.decode(String(parts[0]) + ".AAAAAAAAAAAAAAAAAAAAAA") }
    }

    @Test("a page of limit + 1 rows keeps limit and points after the last kept row")
    func split() throws {
        let rows = (0..<4).map { (Date(timeIntervalSince1970: Double(100 - $0)), UUIDv7.make()) }
        let page = PageToken.page(rows, limit: 3) { $0 }
        #expect(page.rows.count == 3)
        #expect(try PageToken.decode(page.next)?.1 == rows[2].1)
        #expect(PageToken.page(Array(rows.prefix(3)), limit: 3) { $0 }.next.isEmpty)
    }
}
