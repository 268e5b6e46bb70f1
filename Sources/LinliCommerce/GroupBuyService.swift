import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf
import Synchronization

/// The `linli.commerce.v1.GroupBuyService` RPCs (group_buys.proto): shapes checked here, the rows
/// in `GroupBuyStore`; a member's order is placed by `OrderStore` in the same transaction as its
/// seat, and its unpaid timer and the group's deadline timer are set after COMMIT.
public struct GroupBuyService: Sendable {
    let store = GroupBuyStore()
    let merchants = MerchantStore()
    let orders: OrderService
    let handler: Handler

    public init(database: Database, orders: OrderService, logger: Logger) {
        handler = Handler(database: database, logger: logger)
        self.orders = orders
    }

    static func id(_ raw: String, field: String) throws(LinliError) -> UUID { try Input.id(raw, field: field, as: IDTag.Commerce.self).uuid }

    static func campaign(_ m: Linli_Commerce_V1_PublishGroupBuyRequest) throws(LinliError) -> GroupBuyStore.Campaign {
        guard (2...50).contains(m.groupSize) else { throw LinliError.invalid("group_size", "must be 2 to 50") }
        guard (1...168).contains(m.formHours) else { throw LinliError.invalid("form_hours", "must be 1 to 168") }
        let starts = m.hasStartsAt ? try Input.instant(m.startsAt, field: "starts_at") : Date()
        guard m.hasEndsAt else { throw LinliError.invalid("ends_at", "is required") }
        let ends = try Input.instant(m.endsAt, field: "ends_at")
        guard ends > starts, ends <= starts.addingTimeInterval(90 * 86_400) else {
            throw LinliError.invalid("ends_at", "must be after starts_at and within 90 days of it")
        }
        return GroupBuyStore.Campaign(
            id: UUIDv7.make(), community: try Input.id(m.communityID, field: "community_id"), title: try Input.text(m.title, field: "title", max: 60),
            description: try Input.text(m.description_p, field: "description", min: 0, max: 500), groupSize: m.groupSize, formHours: m.formHours,
            startsAt: starts, endsAt: ends)
    }

    /// The campaign when the caller is staff of its community.
    func staffCampaign(_ id: UUID, _ call: Call) async throws -> GroupBuyStore.Campaign {
        let campaign = try await store.campaign(id, on: call.connection, logger: call.logger)
        guard call.principal.canAct(in: campaign.community) else { throw LinliError.notFound("group buy campaign") }
        return campaign
    }

    /// The deal when the caller may see it: staff and residents of its community, its merchant.
    func visibleDeal(_ id: UUID, _ call: Call, forUpdate: Bool = false) async throws -> GroupBuyStore.Deal {
        let deal = try await store.deal(id, forUpdate: forUpdate, on: call.connection, logger: call.logger)
        if call.principal.role == .merchant {
            guard try await merchants.merchantID(of: call.principal.subjectID, on: call.connection, logger: call.logger) == deal.merchant else {
                throw LinliError.notFound("group buy deal")
            }
        } else if !call.principal.canAct(in: deal.community) || (call.principal.role == .resident && deal.state != .approved) {
            throw LinliError.notFound("group buy deal")
        }
        return deal
    }
}

extension Linli_Commerce_V1_GroupBuyCampaign {
    init(_ c: GroupBuyStore.Campaign) {
        self.init()
        id = c.id.uuidString.lowercased()
        communityID = c.community.description
        title = c.title
        description_p = c.description
        groupSize = c.groupSize
        formHours = c.formHours
        startsAt = Google_Protobuf_Timestamp(date: c.startsAt)
        endsAt = Google_Protobuf_Timestamp(date: c.endsAt)
        closed = c.closed
        createdAt = Google_Protobuf_Timestamp(date: c.createdAt)
    }
}

extension Linli_Commerce_V1_GroupBuy {
    init(_ g: GroupBuyStore.Group) {
        self.init()
        id = g.id.uuidString.lowercased()
        dealID = g.deal.uuidString.lowercased()
        size = g.size
        joined = g.joined
        paid = g.paid
        state = ProtoEnum.encode(g.state)
        deadline = Google_Protobuf_Timestamp(date: g.deadline)
        createdAt = Google_Protobuf_Timestamp(date: g.createdAt)
        if let t = g.closedAt { closedAt = Google_Protobuf_Timestamp(date: t) }
    }
}

extension Linli_Commerce_V1_GroupBuyDeal {
    init(_ d: GroupBuyStore.Deal) {
        self.init()
        id = d.id.uuidString.lowercased()
        campaignID = d.campaign.uuidString.lowercased()
        merchantID = d.merchant.uuidString.lowercased()
        merchantName = d.merchantName
        skuID = d.sku.uuidString.lowercased()
        goodsID = d.goods.uuidString.lowercased()
        goodsName = d.goodsName
        spec = d.spec
        priceFen = d.priceFen
        groupPriceFen = d.groupPriceFen
        state = ProtoEnum.encode(d.state)
        reason = d.reason
        forming = d.forming.map(Linli_Commerce_V1_GroupBuy.init)
    }
}

extension GroupBuyService: Linli_Commerce_V1_GroupBuyService.ServiceProtocol {
    public func publishGroupBuy(request: ServerRequest<Linli_Commerce_V1_PublishGroupBuyRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_GroupBuyCampaign>
    {
        let campaign = try Self.campaign(request.message)
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, campaign.community)
            try await Scope.requireExists(campaign.community, on: call.connection, logger: call.logger)
            return .init(try await store.publish(campaign, by: call.principal.subjectID, on: call.connection, logger: call.logger))
        }
    }

    public func closeGroupBuy(request: ServerRequest<Linli_Commerce_V1_CloseGroupBuyRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_GroupBuyCampaign>
    {
        let id = try Self.id(request.message.campaignID, field: "campaign_id")
        return try await handler.write(request, context) { [store] call in
            _ = try await staffCampaign(id, call)
            return .init(try await store.close(id, on: call.connection, logger: call.logger))
        }
    }

    public func applyGroupBuyDeal(request: ServerRequest<Linli_Commerce_V1_ApplyGroupBuyDealRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_GroupBuyDeal>
    {
        let m = request.message
        let campaign = try Self.id(m.campaignID, field: "campaign_id")
        let sku = try Self.id(m.skuID, field: "sku_id")
        guard (1...100_000_000).contains(m.groupPriceFen) else { throw LinliError.invalid("group_price_fen", "must be 1 to 100000000") }
        return try await handler.write(request, context) { [store, merchants] call in
            let merchant = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
            return .init(
                try await store.apply(
                    campaign: campaign, sku: sku, groupPriceFen: m.groupPriceFen, merchant: merchant, on: call.connection, logger: call.logger))
        }
    }

    public func reviewGroupBuyDeal(request: ServerRequest<Linli_Commerce_V1_ReviewGroupBuyDealRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_GroupBuyDeal>
    {
        let m = request.message
        let id = try Self.id(m.dealID, field: "deal_id")
        let reason = try Input.text(m.reason, field: "reason", min: m.approve ? 0 : 1, max: 200)
        return try await handler.write(request, context) { [store] call in
            _ = try await visibleDeal(id, call)
            return .init(
                try await store.review(id, approve: m.approve, reason: reason, by: call.principal.subjectID, on: call.connection, logger: call.logger)
            )
        }
    }

    public func listGroupBuyDeals(request: ServerRequest<Linli_Commerce_V1_ListGroupBuyDealsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ListGroupBuyDealsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let campaign = m.campaignID.isEmpty ? nil : try Self.id(m.campaignID, field: "campaign_id")
        return try await handler.read(request) { [store, merchants] call in
            var merchant: UUID?
            if call.principal.role == .merchant {
                let own = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
                guard try await merchants.sells(own, in: community, on: call.connection, logger: call.logger) else {
                    throw LinliError(.permissionDenied, "community_id: your shop does not sell in this community", field: "community_id")
                }
                merchant = own
            } else {
                try Scope.requireCommunity(call.principal, community)
            }
            let (campaigns, deals) = try await store.list(
                community: community, campaign: campaign, merchant: merchant, residentView: call.principal.role == .resident,
                on: call.connection, logger: call.logger)
            return .with {
                $0.campaigns = campaigns.map(Linli_Commerce_V1_GroupBuyCampaign.init)
                $0.deals = deals.map(Linli_Commerce_V1_GroupBuyDeal.init)
            }
        }
    }

    public func joinGroupBuy(request: ServerRequest<Linli_Commerce_V1_JoinGroupBuyRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Order>
    {
        let m = request.message
        let dealID = try Self.id(m.dealID, field: "deal_id")
        let groupID = m.groupBuyID.isEmpty ? nil : try Self.id(m.groupBuyID, field: "group_buy_id")
        guard (1...99).contains(m.quantity) else { throw LinliError.invalid("quantity", "must be 1 to 99") }
        guard (0...1_000_000).contains(m.points) else { throw LinliError.invalid("points", "must be 0 to 1000000") }
        let room: RoomID? = m.roomID.isEmpty ? nil : try Input.id(m.roomID, field: "room_id")
        let phone = try Input.mobile(m.contactPhone, field: "contact_phone")
        let note = try Input.text(m.note, field: "note", min: 0, max: 200)
        let opened = Mutex<(UUID, Date)?>(nil)
        let response = try await orders.orderWrite(request, context) { [store] call in
            guard call.principal.role == .resident else { throw LinliError(.permissionDenied, "only residents join group buys") }
            let deal = try await visibleDeal(dealID, call)
            let resident = try await OrderService.ownResident(call, community: deal.community)
            let group = try await store.seat(deal: deal, group: groupID, resident: resident, on: call.connection, logger: call.logger)
            if groupID == nil { opened.withLock { $0 = (group.id, group.deadline) } }
            var draft = OrderStore.Draft(
                community: deal.community, lines: [(deal.sku, m.quantity)], points: m.points, room: room, contactPhone: phone, note: note)
            draft.groupBuy = group.id
            draft.prices = [deal.sku: deal.groupPriceFen]
            let address = try await OrderService.deliveryAddress(room: room, community: deal.community, call)
            return .init(
                try await OrderStore().place(
                    draft, resident: resident, address: address, by: .init(call.principal), on: call.connection, logger: call.logger))
        }
        if let (group, deadline) = opened.withLock({ $0 }), let tenant = try? handler.context(request.metadata).tenant {
            orders.timers.schedule(group: group, of: tenant, at: deadline)
        }
        return orders.scheduled(response, request.metadata)
    }

    public func getGroupBuy(request: ServerRequest<Linli_Commerce_V1_GetGroupBuyRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_GroupBuy>
    {
        let id = try Self.id(request.message.groupBuyID, field: "group_buy_id")
        return try await handler.read(request) { [store] call in
            let group = try await store.group(id, on: call.connection, logger: call.logger)
            _ = try await visibleDeal(group.deal, call)
            return .init(group)
        }
    }
}

extension Linli_Commerce_V1_PublishGroupBuyRequest: IdempotentRequest {}
extension Linli_Commerce_V1_CloseGroupBuyRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ApplyGroupBuyDealRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ReviewGroupBuyDealRequest: IdempotentRequest {}
extension Linli_Commerce_V1_JoinGroupBuyRequest: IdempotentRequest {}
