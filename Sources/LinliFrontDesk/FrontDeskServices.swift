import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// The `linli.property.v1.VisitorService` RPCs.
public struct VisitorService: Sendable {
    let store = VisitorStore()
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }
}

extension VisitorService: Linli_Property_V1_VisitorService.ServiceProtocol {
    public func registerVisitor(request: ServerRequest<Linli_Property_V1_RegisterVisitorRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RegisterVisitorResponse>
    {
        let m = request.message
        let from = m.hasValidFrom ? m.validFrom.date : Date()
        guard m.hasValidUntil else { throw LinliError.invalid("valid_until", "is required") }
        let until = m.validUntil.date
        guard until > from else { throw LinliError.invalid("valid_until", "must be after valid_from") }
        guard until.timeIntervalSince(from) <= 7 * 86400 else { throw LinliError.invalid("valid_until", "at most 7 days after valid_from") }
        guard until > Date() else { throw LinliError.invalid("valid_until", "must be in the future") }
        let phone = try Input.text(m.visitorPhone, field: "visitor_phone", min: 0, max: 20)
        guard phone.allSatisfy({ $0.isNumber || $0 == "+" || $0 == "-" }) else { throw LinliError.invalid("visitor_phone", "is not a phone number") }
        let registration = VisitorStore.Registration(
            community: try Input.id(m.communityID, field: "community_id"),
            visitorName: try Input.text(m.visitorName, field: "visitor_name", max: 50),
            visitorPhone: phone, plate: try Input.text(m.plate, field: "plate", min: 0, max: 12).uppercased(),
            validFrom: from, validUntil: until, singleUse: m.singleUse,
            host: m.hostID.isEmpty ? nil : try Input.id(m.hostID, field: "host_id"))
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_RegisterVisitorResponse()
            response.pass = .init(
                try await store.register(registration, by: call.principal, on: call.connection, logger: call.logger), showCode: true)
            return response
        }
    }

    public func verifyVisitorPass(request: ServerRequest<Linli_Property_V1_VerifyVisitorPassRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_VerifyVisitorPassResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let code = try Input.text(m.code, field: "code", max: 6)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_VerifyVisitorPassResponse()
            response.pass = .init(
                try await store.verify(community: community, code: code, by: call.principal, on: call.connection, logger: call.logger),
                showCode: false)
            return response
        }
    }

    public func recordVisitorExit(request: ServerRequest<Linli_Property_V1_RecordVisitorExitRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RecordVisitorExitResponse>
    {
        let m = request.message
        let id = try Input.id(m.passID, field: "pass_id", as: IDTag.VisitorPass.self).uuid
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_RecordVisitorExitResponse()
            response.pass = .init(try await store.exit(id, by: call.principal, on: call.connection, logger: call.logger), showCode: false)
            return response
        }
    }

    public func revokeVisitorPass(request: ServerRequest<Linli_Property_V1_RevokeVisitorPassRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RevokeVisitorPassResponse>
    {
        let m = request.message
        let id = try Input.id(m.passID, field: "pass_id", as: IDTag.VisitorPass.self).uuid
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_RevokeVisitorPassResponse()
            response.pass = .init(try await store.revoke(id, by: call.principal, on: call.connection, logger: call.logger), showCode: false)
            return response
        }
    }

    public func listVisitorPasses(request: ServerRequest<Linli_Property_V1_ListVisitorPassesRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListVisitorPassesResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [store] call in
            let passes = try await store.list(
                community: community, activeOnly: m.activeOnly, after: after, limit: limit + 1, for: call.principal,
                on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListVisitorPassesResponse()
            // Hosts see their own codes; a guard's list never shows codes.
            let page = PageToken.page(passes, limit: limit) { ($0.createdAt, $0.id) }
            response.passes = page.rows.map { .init($0, showCode: $0.host == call.principal.subjectID) }
            response.nextPageToken = page.next
            return response
        }
    }
}

/// The `linli.property.v1.ParcelService` RPCs.
public struct ParcelService: Sendable {
    let store = ParcelStore()
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }
}

extension ParcelService: Linli_Property_V1_ParcelService.ServiceProtocol {
    public func logParcel(request: ServerRequest<Linli_Property_V1_LogParcelRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_LogParcelResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let resident: UserID = try Input.id(m.residentID, field: "resident_id")
        let carrier = try Input.text(m.carrier, field: "carrier", max: 40)
        let tracking = try Input.text(m.trackingNumber, field: "tracking_number", max: 64)
        let shelf = try Input.text(m.shelf, field: "shelf", min: 0, max: 20)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_LogParcelResponse()
            response.parcel = .init(
                try await store.log(
                    community: community, resident: resident, carrier: carrier, trackingNumber: tracking,
                    shelf: shelf, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func pickUpParcel(request: ServerRequest<Linli_Property_V1_PickUpParcelRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_PickUpParcelResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let code = try Input.text(m.pickupCode, field: "pickup_code", max: 6)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_PickUpParcelResponse()
            response.parcel = .init(
                try await store.pickUp(community: community, code: code, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func listWaitingParcels(request: ServerRequest<Linli_Property_V1_ListWaitingParcelsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListWaitingParcelsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        guard (0...365).contains(m.minAgeDays) else { throw LinliError.invalid("min_age_days", "must be 0 to 365") }
        return try await handler.read(request) { [store] call in
            let parcels = try await store.waiting(
                community: community, minAgeDays: Int(clamping: m.minAgeDays), for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListWaitingParcelsResponse()
            response.parcels = parcels.map(Linli_Property_V1_Parcel.init)
            return response
        }
    }
}

extension Linli_Property_V1_RegisterVisitorRequest: IdempotentRequest {}
extension Linli_Property_V1_VerifyVisitorPassRequest: IdempotentRequest {}
extension Linli_Property_V1_RecordVisitorExitRequest: IdempotentRequest {}
extension Linli_Property_V1_RevokeVisitorPassRequest: IdempotentRequest {}
extension Linli_Property_V1_LogParcelRequest: IdempotentRequest {}
extension Linli_Property_V1_PickUpParcelRequest: IdempotentRequest {}

extension Linli_Property_V1_VisitorPass {
    init(_ p: VisitorStore.Pass, showCode: Bool) {
        self.init()
        id = p.id.uuidString.lowercased()
        communityID = p.community.description
        hostID = p.host.description
        visitorName = p.visitorName
        visitorPhone = PersonalData.maskPhone(p.visitorPhone)
        plate = p.plate
        validFrom = Google_Protobuf_Timestamp(date: p.validFrom)
        validUntil = Google_Protobuf_Timestamp(date: p.validUntil)
        singleUse = p.singleUse
        code = showCode ? p.code : ""
        state = Linli_Property_V1_VisitorPassState(rawValue: (VisitorStore.State.allCases.firstIndex(of: p.state) ?? -1) + 1) ?? .unspecified
        walkIn = p.walkIn
        entries = Int32(clamping: p.entries)
        if let at = p.lastEntryAt { lastEntryAt = Google_Protobuf_Timestamp(date: at) }
        if let at = p.lastExitAt { lastExitAt = Google_Protobuf_Timestamp(date: at) }
    }
}

extension Linli_Property_V1_Parcel {
    init(_ p: ParcelStore.Parcel) {
        self.init()
        id = p.id.uuidString.lowercased()
        communityID = p.community.description
        residentID = p.resident.description
        carrier = p.carrier
        trackingNumber = p.trackingNumber
        shelf = p.shelf
        pickupCode = p.pickupCode
        pickedUp = p.pickedUpAt != nil
        loggedAt = Google_Protobuf_Timestamp(date: p.loggedAt)
        if let at = p.pickedUpAt { pickedUpAt = Google_Protobuf_Timestamp(date: at) }
        ageDays = Int32(clamping: p.ageDays)
    }
}

/// The `linli.property.v1.ItemReleaseService` RPCs.
public struct ItemReleaseService: Sendable {
    let store = ItemReleaseStore()
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }
}

extension ItemReleaseService: Linli_Property_V1_ItemReleaseService.ServiceProtocol {
    public func applyItemRelease(request: ServerRequest<Linli_Property_V1_ApplyItemReleaseRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ApplyItemReleaseResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let items = try Input.text(m.items, field: "items", max: 1000)
        let mover = try Input.text(m.mover, field: "mover", min: 0, max: 100)
        let date = try Input.localDate(m.plannedDate, field: "planned_date")
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_ApplyItemReleaseResponse()
            response.release = .init(
                try await store.apply(
                    community: community, items: items, mover: mover, plannedDate: date,
                    by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func reviewItemRelease(request: ServerRequest<Linli_Property_V1_ReviewItemReleaseRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ReviewItemReleaseResponse>
    {
        let m = request.message
        let id = try Input.id(m.releaseID, field: "release_id", as: IDTag.ItemRelease.self).uuid
        let note = try Input.text(m.note, field: "note", min: m.approve ? 0 : 1, max: 500)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_ReviewItemReleaseResponse()
            response.release = .init(
                try await store.review(id, approve: m.approve, note: note, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func verifyItemRelease(request: ServerRequest<Linli_Property_V1_VerifyItemReleaseRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_VerifyItemReleaseResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let code = try Input.text(m.code, field: "code", max: 6)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_VerifyItemReleaseResponse()
            response.release = .init(
                try await store.verify(community: community, code: code, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func listItemReleases(request: ServerRequest<Linli_Property_V1_ListItemReleasesRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListItemReleasesResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [store] call in
            let rows = try await store.list(
                community: community, after: after, limit: limit + 1, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListItemReleasesResponse()
            let page = PageToken.page(rows, limit: limit) { ($0.createdAt, $0.id) }
            response.releases = page.rows.map(Linli_Property_V1_ItemRelease.init)
            response.nextPageToken = page.next
            return response
        }
    }
}

extension Linli_Property_V1_ApplyItemReleaseRequest: IdempotentRequest {}
extension Linli_Property_V1_ReviewItemReleaseRequest: IdempotentRequest {}
extension Linli_Property_V1_VerifyItemReleaseRequest: IdempotentRequest {}

extension Linli_Property_V1_ItemRelease {
    init(_ r: ItemReleaseStore.Release) {
        self.init()
        id = r.id.uuidString.lowercased()
        communityID = r.community.description
        residentID = r.resident.description
        items = r.items
        mover = r.mover
        plannedDate = r.plannedDate
        state = Linli_Property_V1_ItemReleaseState(rawValue: (ItemReleaseStore.State.allCases.firstIndex(of: r.state) ?? -1) + 1) ?? .unspecified
        code = r.code ?? ""
        reviewNote = r.reviewNote
        createdAt = Google_Protobuf_Timestamp(date: r.createdAt)
        if let at = r.releasedAt { releasedAt = Google_Protobuf_Timestamp(date: at) }
    }
}
