import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliServer
import SwiftProtobuf
import Testing

@Suite("Visitors and parcels")
struct FrontDeskTests {
    func registration(_ demo: DemoTenant, singleUse: Bool, hours: Double = 4) -> Linli_Property_V1_RegisterVisitorRequest {
        var request = Linli_Property_V1_RegisterVisitorRequest()
        request.requestID = UUID().uuidString
        request.communityID = demo.community.description
        request.visitorName = "刘先生"
        request.visitorPhone = "13912345678"
        request.plate = "沪a12345"
        request.validUntil = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(hours * 3600))
        request.singleUse = singleUse
        return request
    }

    @Test("a single-use pass lets one entry through, even when two guards verify it at once; exits are logged")
    func singleUse() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let visitors = Linli_Property_V1_VisitorService.Client(wrapping: server.client)
        let resident = try await server.login(demo, "resident1")
        let pass = try await visitors.registerVisitor(registration(demo, singleUse: true), metadata: resident).pass
        #expect(pass.code.count == 6 && pass.state == .active && pass.plate == "沪A12345" && pass.visitorPhone == "139****5678")

        let guardSession = try await server.login(demo, "guard")
        let outcomes = await withTaskGroup(of: RPCError.Code?.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    var verify = Linli_Property_V1_VerifyVisitorPassRequest()
                    verify.requestID = UUID().uuidString
                    verify.communityID = demo.community.description
                    verify.code = pass.code
                    do { _ = try await visitors.verifyVisitorPass(verify, metadata: guardSession); return nil } catch let error as RPCError {
                        return error.code
                    } catch { return .unknown }
                }
            }
            var all: [RPCError.Code?] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.filter { $0 == nil }.count == 1 && outcomes.contains(.failedPrecondition))

        var exit = Linli_Property_V1_RecordVisitorExitRequest()
        exit.requestID = UUID().uuidString
        exit.passID = pass.id
        let left = try await visitors.recordVisitorExit(exit, metadata: guardSession).pass
        #expect(left.state == .used && left.entries == 1 && left.hasLastExitAt && left.code.isEmpty)
        // Residents cannot work the gate.
        var verify = Linli_Property_V1_VerifyVisitorPassRequest()
        verify.requestID = UUID().uuidString
        verify.communityID = demo.community.description
        verify.code = pass.code
        #expect(await rpcCode { try await visitors.verifyVisitorPass(verify, metadata: resident) } == .permissionDenied)
    }

    @Test("a multi-use pass works inside its window until revoked; walk-ins need a host; bad windows name the field")
    func windowsAndRevocation() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let visitors = Linli_Property_V1_VisitorService.Client(wrapping: server.client)
        let resident = try await server.login(demo, "resident1")
        let guardSession = try await server.login(demo, "guard")
        let pass = try await visitors.registerVisitor(registration(demo, singleUse: false), metadata: resident).pass
        var verify = Linli_Property_V1_VerifyVisitorPassRequest()
        verify.communityID = demo.community.description
        verify.code = pass.code
        for _ in 0..<2 {
            verify.requestID = UUID().uuidString
            _ = try await visitors.verifyVisitorPass(verify, metadata: guardSession)
        }
        var revoke = Linli_Property_V1_RevokeVisitorPassRequest()
        revoke.requestID = UUID().uuidString
        revoke.passID = pass.id
        #expect(await rpcCode { try await visitors.revokeVisitorPass(revoke, metadata: try await server.login(demo, "resident2")) } == .notFound)
        #expect(try await visitors.revokeVisitorPass(revoke, metadata: resident).pass.state == .revoked)
        verify.requestID = UUID().uuidString
        let refused = await rpcError { try await visitors.verifyVisitorPass(verify, metadata: guardSession) }
        #expect(refused?.code == .failedPrecondition && refused?.message.contains("revoked") == true)

        var walkIn = registration(demo, singleUse: true)
        #expect(await rpcError { try await visitors.registerVisitor(walkIn, metadata: guardSession) }?.message.hasPrefix("host_id") == true)
        walkIn.requestID = UUID().uuidString
        walkIn.hostID = try #require(demo.users["resident2"]).description
        let entered = try await visitors.registerVisitor(walkIn, metadata: guardSession).pass
        #expect(entered.walkIn && entered.entries == 1)

        var tooLong = registration(demo, singleUse: true, hours: 24 * 8)
        #expect(await rpcError { try await visitors.registerVisitor(tooLong, metadata: resident) }?.message.hasPrefix("valid_until") == true)
        tooLong.requestID = UUID().uuidString
        tooLong.visitorName = ""
        tooLong.validUntil = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(3600))
        #expect(await rpcError { try await visitors.registerVisitor(tooLong, metadata: resident) }?.message.hasPrefix("visitor_name") == true)

        var mine = Linli_Property_V1_ListVisitorPassesRequest()
        mine.communityID = demo.community.description
        let listed = try await visitors.listVisitorPasses(mine, metadata: resident).passes
        #expect(listed.map(\.id) == [pass.id] && !listed[0].code.isEmpty)
        #expect(try await visitors.listVisitorPasses(mine, metadata: guardSession).passes.allSatisfy { $0.code.isEmpty })
    }

    @Test("a parcel is logged once with a pickup code, the resident is told, pickup is recorded, waiting ones listed by age")
    func parcels() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let parcels = Linli_Property_V1_ParcelService.Client(wrapping: server.client)
        let desk = try await server.login(demo, "guard")
        var log = Linli_Property_V1_LogParcelRequest()
        log.requestID = UUID().uuidString
        log.communityID = demo.community.description
        log.residentID = try #require(demo.users["resident1"]).description
        log.carrier = "顺丰"
        log.trackingNumber = "SF1234567890"
        log.shelf = "A-03"
        let parcel = try await parcels.logParcel(log, metadata: desk).parcel
        #expect(parcel.pickupCode.count == 6 && !parcel.pickedUp)
        log.requestID = UUID().uuidString
        #expect(await rpcCode { try await parcels.logParcel(log, metadata: desk) } == .alreadyExists)
        log.trackingNumber = "SF0000000001"
        log.residentID = try #require(demo.users["manager"]).description
        #expect(await rpcError { try await parcels.logParcel(log, metadata: desk) }?.message.hasPrefix("resident_id") == true)

        var waiting = Linli_Property_V1_ListWaitingParcelsRequest()
        waiting.communityID = demo.community.description
        let resident = try await server.login(demo, "resident1")
        #expect(try await parcels.listWaitingParcels(waiting, metadata: resident).parcels.map(\.id) == [parcel.id])
        #expect(try await parcels.listWaitingParcels(waiting, metadata: try await server.login(demo, "resident2")).parcels.isEmpty)
        waiting.minAgeDays = 3
        #expect(try await parcels.listWaitingParcels(waiting, metadata: desk).parcels.isEmpty)

        var pickUp = Linli_Property_V1_PickUpParcelRequest()
        pickUp.requestID = UUID().uuidString
        pickUp.communityID = demo.community.description
        pickUp.pickupCode = parcel.pickupCode
        #expect(try await parcels.pickUpParcel(pickUp, metadata: desk).parcel.pickedUp)
        pickUp.requestID = UUID().uuidString
        #expect(await rpcCode { try await parcels.pickUpParcel(pickUp, metadata: desk) } == .notFound)

        let told = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            let rows = try await connection.query(
                "SELECT payload->>'pickup_code' FROM outbox WHERE topic = 'parcel.arrived'",
                logger: server.app.database.logger)
            var codes: [String] = []
            for try await code in rows.decode(String.self) { codes.append(code) }
            return codes
        }
        #expect(told == [parcel.pickupCode])
    }
}

@Suite("Item release")
struct ItemReleaseTests {
    @Test("a resident applies, a manager approves with a code, a guard releases once; rejections need a note")
    func release() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let items = Linli_Property_V1_ItemReleaseService.Client(wrapping: server.client)
        let resident = try await server.login(demo, "resident1")
        let manager = try await server.login(demo, "manager")
        let guardSession = try await server.login(demo, "guard")

        var apply = Linli_Property_V1_ApplyItemReleaseRequest()
        apply.requestID = UUID().uuidString
        apply.communityID = demo.community.description
        apply.items = "旧沙发 1 张、纸箱 6 个"
        apply.mover = "蚂蚁搬家 王师傅"
        apply.plannedDate = "2026-02-30"
        #expect(await rpcError { try await items.applyItemRelease(apply, metadata: resident) }?.message.hasPrefix("planned_date") == true)
        apply.plannedDate = "2026-12-01"
        let applied = try await items.applyItemRelease(apply, metadata: resident).release
        #expect(applied.state == .pending && applied.code.isEmpty && applied.plannedDate == "2026-12-01")

        var review = Linli_Property_V1_ReviewItemReleaseRequest()
        review.requestID = UUID().uuidString
        review.releaseID = applied.id
        review.approve = true
        #expect(await rpcCode { try await items.reviewItemRelease(review, metadata: resident) } == .permissionDenied)
        let approved = try await items.reviewItemRelease(review, metadata: manager).release
        #expect(approved.state == .approved && approved.code.count == 6)

        var verify = Linli_Property_V1_VerifyItemReleaseRequest()
        verify.requestID = UUID().uuidString
        verify.communityID = demo.community.description
        verify.code = approved.code
        #expect(try await items.verifyItemRelease(verify, metadata: guardSession).release.state == .released)
        verify.requestID = UUID().uuidString
        #expect(await rpcCode { try await items.verifyItemRelease(verify, metadata: guardSession) } == .notFound)

        apply.requestID = UUID().uuidString
        let second = try await items.applyItemRelease(apply, metadata: resident).release
        review.requestID = UUID().uuidString
        review.releaseID = second.id
        review.approve = false
        #expect(await rpcError { try await items.reviewItemRelease(review, metadata: manager) }?.message.hasPrefix("note") == true)
        review.requestID = UUID().uuidString
        review.note = "搬运时段不在允许范围"
        #expect(try await items.reviewItemRelease(review, metadata: manager).release.state == .rejected)
        review.requestID = UUID().uuidString
        review.approve = true
        #expect(await rpcCode { try await items.reviewItemRelease(review, metadata: manager) } == .failedPrecondition)
    }
}
