import GRPCCore
import SwiftProtobuf

/// A CSV import streamed by a client: the first message names the import (request id,
/// community, …), every message may carry lines, and a line may itself hold several lines
/// (a chunk of a file). Gathered into one request, so its fingerprint makes a retried import
/// replay the first report.
public protocol LineStreamMessage: SwiftProtobuf.Message, Sendable {
    var lines: [String] { get set }
    /// Whether the message sets any of the fields that belong in the first message only.
    var namesTheImport: Bool { get }
}

public enum LineStream {
    public static let maxLines = 100_000

    /// The first message with every line of the stream, split at line breaks (`\r\n` or `\n`).
    public static func collect<Message: LineStreamMessage>(_ messages: RPCAsyncSequence<Message, any Error>) async throws -> Message {
        var whole: Message?
        var lines: [String] = []
        for try await message in messages {
            if whole == nil {
                whole = message
            } else if message.namesTheImport {
                throw LinliError.invalid("request_id", "request_id, community_id and the kind of import belong in the first message only")
            }
            for chunk in message.lines {
                lines.append(
                    contentsOf: chunk.split(separator: "\n", omittingEmptySubsequences: false).map {
                        $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
                    })
            }
            guard lines.count <= maxLines else { throw LinliError.invalid("lines", "at most \(maxLines) lines per import") }
        }
        guard var whole else { throw LinliError.invalid("request_id", "the stream is empty; the first message names the import") }
        whole.lines = lines
        return whole
    }
}
