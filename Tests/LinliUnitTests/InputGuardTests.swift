import Foundation
import LinliAPI
import LinliCore
import SwiftProtobuf
import Testing

@testable import LinliServer

@Suite("Input guard")
struct InputGuardTests {
    private func field(of message: some SwiftProtobuf.Message) -> String? {
        do {
            try InputGuard.check(message)
            return nil
        } catch {
            #expect(error.code == .invalidArgument)
            return error.field
        }
    }

    @Test("every field of a good request passes")
    func goodRequest() {
        let request = Linli_Property_V1_FileRepairRequest.with {
            $0.requestID = UUID().uuidString
            $0.communityID = UUID().uuidString
            $0.description_p = "厨房水管漏水\n请尽快处理"
            $0.photoRefs = ["a.jpg", "b.jpg"]
            $0.preferredAt = Google_Protobuf_Timestamp(seconds: 1_800_000_000)
        }
        #expect(field(of: request) == nil)
    }

    @Test("timestamps outside 2000–2100 name their field")
    func timestamps() {
        for seconds in [Int64.min, -10_000_000_000_000, 0, 946_684_799, 4_102_444_800, 10_000_000_000_000, .max] {
            let request = Linli_Property_V1_FileRepairRequest.with { $0.preferredAt = Google_Protobuf_Timestamp(seconds: seconds) }
            #expect(field(of: request) == "preferred_at")
        }
        let nanos = Linli_Property_V1_FileRepairRequest.with {
            $0.preferredAt = .with {
                $0.seconds = 1_800_000_000; $0.nanos = -1
            }
        }
        #expect(field(of: nanos) == "preferred_at")
    }

    @Test("integers outside their declared range name their nested field")
    func integers() {
        for value: Int32 in [0x8000, 1_000_000_000, -1, .min, 6] {
            let request = Linli_Property_V1_TransitionWorkOrderRequest.with {
                $0.rating.speed = value; $0.rating.attitude = 5
            }
            #expect(field(of: request) == "rating.speed")
        }
        let pay = Linli_Billing_V1_PayRequest.with {
            $0.methods = [.with { $0.amountFen = 100 }, .with { $0.amountFen = 1_000_000_000 }]
        }
        #expect(field(of: pay) == "methods[1].amount_fen")
        let negative = Linli_Billing_V1_PayRequest.with { $0.methods = [.with { $0.amountFen = -1 }] }
        #expect(field(of: negative) == "methods[0].amount_fen")
    }

    @Test("control characters, NUL, bidi overrides and oversize text are refused; line breaks only where text is long")
    func texts() {
        for bad in ["a\u{0}b", "a\u{7}b", "a\u{1B}[31m", "evil\u{202E}gpj.exe", "a\u{85}b", String(repeating: "x", count: 201)] {
            #expect(field(of: Linli_Property_V1_FileRepairRequest.with { $0.location = bad }) == "location")
        }
        #expect(field(of: Linli_Property_V1_FileRepairRequest.with { $0.location = "1栋\n2单元" }) == "location")
        #expect(field(of: Linli_Property_V1_FileRepairRequest.with { $0.description_p = "第一行\r\n第二行\t完" }) == nil)
        #expect(field(of: Linli_Property_V1_FileRepairRequest.with { $0.description_p = String(repeating: "漏", count: 2_001) }) == "description")
    }

    @Test("repeated fields are bounded and checked entry by entry")
    func repeated() {
        let many = Linli_Identity_V1_CreateUserRequest.with { $0.communityIds = Array(repeating: UUID().uuidString, count: 10_000) }
        #expect(field(of: many) == "community_ids")
        let bad = Linli_Property_V1_FileRepairRequest.with { $0.photoRefs = ["ok.jpg", "bad\u{0}.jpg"] }
        #expect(field(of: bad) == "photo_refs[1]")
    }

    @Test("request_id must be a UUID; unknown enum values are refused")
    func requestIDAndEnums() throws {
        #expect(field(of: Linli_Property_V1_FileRepairRequest.with { $0.requestID = "retry-1" }) == "request_id")
        #expect(field(of: Linli_Property_V1_FileRepairRequest.with { $0.priority = .UNRECOGNIZED(99) }) == "priority")
        #expect(throws: LinliError.self) { try Input.requestID("sigterm-1-2") }
        #expect(try Input.requestID("0192F2A1-7C3B-7D4E-8F00-123456789ABC") == "0192f2a1-7c3b-7d4e-8f00-123456789abc")
    }
}
