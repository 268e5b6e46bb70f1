import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// The `linli.property.v1.InboxService` RPCs: a principal's own notifications.
public struct InboxService: Sendable {
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }

    struct Row: Sendable {
        var id: UUID
        var topic: String
        var payload: String
        var createdAt: Date
        var read: Bool
    }
}

extension InboxService: Linli_Property_V1_InboxService.ServiceProtocol {
    public func listNotifications(request: ServerRequest<Linli_Property_V1_ListNotificationsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListNotificationsResponse>
    {
        let m = request.message
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { call in
            let me = call.principal.subjectID.uuid
            let found = try await call.connection.run(
                """
                SELECT id, topic, payload::text, created_at, read_at IS NOT NULL FROM notifications
                WHERE recipient_id = \(me) AND (NOT \(m.unreadOnly) OR read_at IS NULL)
                  AND (\(after?.0)::timestamptz IS NULL OR (created_at, id) < (\(after?.0), \(after?.1)))
                ORDER BY created_at DESC, id DESC LIMIT \(Int32(clamping: limit + 1))
                """, logger: call.logger)
            var rows: [Row] = []
            for try await (id, topic, payload, at, read) in found.decode((UUID, String, String, Date, Bool).self) {
                rows.append(Row(id: id, topic: topic, payload: payload, createdAt: at, read: read))
            }
            var unread: Int64 = 0
            for try await count in try await call.connection.run(
                "SELECT count(*) FROM notifications WHERE recipient_id = \(me) AND read_at IS NULL", logger: call.logger
            ).decode(Int64.self) {
                unread = count
            }
            var response = Linli_Property_V1_ListNotificationsResponse()
            let page = PageToken.page(rows, limit: limit) { ($0.createdAt, $0.id) }
            response.notifications = page.rows.map { row in
                .with {
                    $0.id = row.id.uuidString.lowercased()
                    $0.topic = row.topic
                    $0.payloadJson = row.payload
                    $0.createdAt = Google_Protobuf_Timestamp(date: row.createdAt)
                    $0.read = row.read
                }
            }
            response.nextPageToken = page.next
            response.unreadCount = Int32(clamping: unread)
            return response
        }
    }

    public func markNotificationsRead(request: ServerRequest<Linli_Property_V1_MarkNotificationsReadRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_MarkNotificationsReadResponse>
    {
        let m = request.message
        guard m.ids.count <= 500 else { throw LinliError.invalid("ids", "at most 500 at once") }
        let ids = try Input.ids(m.ids, field: "ids", as: IDTag.Notification.self).map(\.uuid)
        return try await handler.write(request, context) { call in
            let me = call.principal.subjectID.uuid
            let rows = try await call.connection.run(
                """
                UPDATE notifications SET read_at = now()
                WHERE recipient_id = \(me) AND read_at IS NULL AND (cardinality(\(ids)::uuid[]) = 0 OR id = ANY(\(ids)::uuid[]))
                RETURNING 1
                """, logger: call.logger)
            var marked: Int32 = 0
            for try await _ in rows { marked += 1 }
            return Linli_Property_V1_MarkNotificationsReadResponse.with { $0.marked = marked }
        }
    }
}

extension Linli_Property_V1_MarkNotificationsReadRequest: IdempotentRequest {}
