import Crypto
import Foundation
import LinliCore
import Logging
import PostgresNIO
import SwiftProtobuf

/// Makes a mutating call safe to retry: the first result is stored under the caller's
/// `request_id` in the same transaction as the effect; a retry gets that result back, and
/// the same id with other parameters is refused.
public enum Idempotency {
    /// Where the key lives: the tenant schema for tenant calls, `platform` for operator calls.
    public enum Table: String, Sendable {
        case tenant = "idempotency_keys"
        case platform = "platform.idempotency_keys"
    }

    /// Runs `effect` once per (principal, request id) inside the caller's transaction.
    ///
    /// - Parameters:
    ///   - fingerprint: the request's bytes without its request id.
    ///   - effect: performs the change and returns the encoded response.
    /// - Returns: the encoded response, fresh or replayed.
    public static func once(
        _ table: Table, principal: UserID, requestID: String, method: String, fingerprint: Data,
        on connection: PostgresConnection, logger: Logger,
        _ effect: () async throws -> Data
    ) async throws -> Data {
        let hash = Data(SHA256.hash(data: Data(method.utf8) + fingerprint))
        // The insert waits for a concurrent transaction holding the same key, then either
        // claims the key or finds it taken and replays the stored response.
        // Table name interpolation: one of two constants above.
        var claimed = false
        let insert = try await connection.run(
            """
            INSERT INTO \(unescaped: table.rawValue) (principal_id, request_id, method, request_hash)
            VALUES (\(principal.uuid), \(requestID), \(method), \(hash)) ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in insert { claimed = true }
        if !claimed {
            let rows = try await connection.run(
                """
                SELECT request_hash, response FROM \(unescaped: table.rawValue)
                WHERE principal_id = \(principal.uuid) AND request_id = \(requestID)
                """, logger: logger)
            for try await (storedHash, response) in rows.decode((Data, Data?).self) {
                guard storedHash == hash else {
                    throw LinliError(.failedPrecondition, "request_id: already used for a different request", field: "request_id")
                }
                guard let response else { break }
                return response
            }
            throw LinliError(.unavailable, "request_id: a call with this id is still in progress; retry")
        }
        let response = try await effect()
        try await connection.run(
            """
            UPDATE \(unescaped: table.rawValue) SET response = \(response)
            WHERE principal_id = \(principal.uuid) AND request_id = \(requestID)
            """, logger: logger)
        return response
    }
}

/// A mutating protobuf request: it carries the caller's `request_id`.
public protocol IdempotentRequest: SwiftProtobuf.Message {
    var requestID: String { get set }
}

extension Idempotency {
    /// `once` for protobuf calls: the fingerprint is the request with its request id cleared
    /// (clear secrets such as passwords before passing it), the stored result is the encoded
    /// response.
    public static func once<Request: IdempotentRequest, Response: SwiftProtobuf.Message>(
        _ table: Table, principal: UserID, requestID: String, method: String, fingerprint: Request,
        on connection: PostgresConnection, logger: Logger,
        _ effect: () async throws -> Response
    ) async throws -> Response {
        var fingerprint = fingerprint
        fingerprint.requestID = ""
        let bytes: Data = try fingerprint.serializedBytes()
        let stored = try await once(
            table, principal: principal, requestID: requestID, method: method,
            fingerprint: bytes, on: connection, logger: logger
        ) {
            try await effect().serializedBytes()
        }
        return try Response(serializedBytes: stored)
    }
}

extension Database {
    /// Runs a mutating call once per request id, in one transaction of the caller's tenant:
    /// a retry returns the first response, the same id with other content is refused.
    public func once<Request: IdempotentRequest & Sendable, Response: SwiftProtobuf.Message & Sendable>(
        _ ctx: RequestContext, _ method: String, _ request: Request,
        _ effect: (PostgresConnection) async throws -> Response
    ) async throws -> Response {
        let requestID = try Input.requestID(request.requestID)
        return try await tenantTransaction(try ctx.requireTenant()) { connection in
            try await Idempotency.once(
                .tenant, principal: ctx.principal.subjectID, requestID: requestID, method: method,
                fingerprint: request, on: connection, logger: ctx.logger
            ) {
                try await effect(connection)
            }
        }
    }
}
