import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import SwiftProtobuf

/// The `linli.property.v1.NoticeService` RPCs.
public struct NoticeService: Sendable {
    let board: NoticeStore
    let handler: Handler

    /// Creates the service.
    public init(database: Database, logger: Logger) {
        self.board = NoticeStore(database: database)
        handler = Handler(database: database, logger: logger)
    }
}

extension NoticeService: Linli_Property_V1_NoticeService.ServiceProtocol {
    public func publishNotice(request: ServerRequest<Linli_Property_V1_PublishNoticeRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_PublishNoticeResponse>
    {
        let m = request.message
        let draft = try NoticeStore.Draft(
            communityID: m.communityID, title: m.title, body: m.body, category: m.category.rawValue, pinned: m.pinned,
            buildingIDs: m.buildingIds, expiresAt: m.hasExpiresAt ? m.expiresAt.date : nil)
        return try await handler.write(request, context) { [board] call in
            try Scope.requireCommunity(call.principal, draft.communityID)
            var response = Linli_Property_V1_PublishNoticeResponse()
            response.notice = .init(try await board.publish(draft, by: call.principal.subjectID, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func listNotices(request: ServerRequest<Linli_Property_V1_ListNoticesRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListNoticesResponse>
    {
        let ctx = try handler.context(request.metadata)
        let tenant = try ctx.requireTenant()
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let limit = try Input.pageSize(m.page.pageSize)
        let cursor = m.page.pageToken.isEmpty ? nil : try NoticeStore.Cursor(token: m.page.pageToken)
        try Scope.requireCommunity(ctx.principal, community)
        let page = try await board.list(
            community: community, for: ctx.principal, after: cursor, limit: limit,
            tenant: tenant, logger: ctx.logger)
        var response = Linli_Property_V1_ListNoticesResponse()
        response.notices = page.notices.map(Linli_Property_V1_Notice.init)
        response.nextPageToken = page.next?.token ?? ""
        return ServerResponse(message: response)
    }

    public func markNoticeRead(request: ServerRequest<Linli_Property_V1_MarkNoticeReadRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_MarkNoticeReadResponse>
    {
        let ctx = try handler.context(request.metadata)
        _ = try Input.requestID(request.message.requestID)
        let id: NoticeID = try Input.id(request.message.noticeID, field: "notice_id")
        // Marking read is idempotent by nature: a retry returns the first read time.
        let readAt = try await board.markRead(id, by: ctx.principal, tenant: ctx.requireTenant(), logger: ctx.logger)
        var response = Linli_Property_V1_MarkNoticeReadResponse()
        response.readAt = Google_Protobuf_Timestamp(date: readAt)
        return ServerResponse(message: response)
    }

    public func getNoticeReadStats(request: ServerRequest<Linli_Property_V1_GetNoticeReadStatsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_GetNoticeReadStatsResponse>
    {
        let ctx = try handler.context(request.metadata)
        let id: NoticeID = try Input.id(request.message.noticeID, field: "notice_id")
        let stats = try await board.readStats(id, for: ctx.principal, tenant: ctx.requireTenant(), logger: ctx.logger)
        var response = Linli_Property_V1_GetNoticeReadStatsResponse()
        response.noticeID = id.description
        response.readCount = stats.read
        response.audienceCount = stats.audience
        return ServerResponse(message: response)
    }
}

extension Linli_Property_V1_Notice {
    init(_ notice: NoticeStore.Notice) {
        self.init()
        id = notice.id.description
        communityID = notice.communityID.description
        title = notice.title
        body = notice.body
        category = Linli_Property_V1_NoticeCategory(rawValue: notice.category) ?? .unspecified
        pinned = notice.pinned
        buildingIds = notice.buildingIDs.map(\.description)
        publishedAt = Google_Protobuf_Timestamp(date: notice.publishedAt)
        if let expires = notice.expiresAt { expiresAt = Google_Protobuf_Timestamp(date: expires) }
        publishedBy = notice.publishedBy.description
        read = notice.read
    }
}

extension Linli_Property_V1_PublishNoticeRequest: IdempotentRequest {}
