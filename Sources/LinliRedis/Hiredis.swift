import CHiredis
import NIOCore

/// The hiredis half of the client: it formats commands and parses replies; SwiftNIO moves bytes.
enum Hiredis {
    /// Encodes one command with hiredis' `redisFormatCommandArgv` into `buffer`.
    static func encode(_ arguments: [[UInt8]], into buffer: inout ByteBuffer) {
        var pointers: [UnsafeMutablePointer<CChar>?] = []
        var lengths: [Int] = []
        pointers.reserveCapacity(arguments.count)
        for argument in arguments {
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(argument.count, 1))
            argument.withUnsafeBufferPointer { source in
                source.withMemoryRebound(to: CChar.self) { chars in
                    if let base = chars.baseAddress { copy.initialize(from: base, count: argument.count) }
                }
            }
            pointers.append(copy)
            lengths.append(argument.count)
        }
        defer { for pointer in pointers { pointer?.deallocate() } }
        var target: UnsafeMutablePointer<CChar>?
        var argv: [UnsafePointer<CChar>?] = pointers.map { $0.map { UnsafePointer($0) } }
        let length = redisFormatCommandArgv(&target, Int32(arguments.count), &argv, lengths)
        guard let target, length > 0 else { return }
        defer { redisFreeCommand(target) }
        buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }
}

/// An incremental reply parser over hiredis' `redisReader`. Not thread-safe: one per channel.
final class HiredisReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        reader = redisReaderCreate()
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands received bytes to the parser.
    func feed(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            _ = redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
    }

    /// The next complete reply, nil when more bytes are needed.
    func next() throws -> RESPValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
            throw RedisError.unavailable("protocol error from Redis")
        }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return Self.convert(reply.assumingMemoryBound(to: redisReply.self))
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let r = reply.pointee
        func bytes() -> [UInt8] {
            guard let str = r.str else { return [] }
            return [UInt8](UnsafeRawBufferPointer(start: str, count: Int(r.len)))
        }
        switch r.type {
        case REDIS_REPLY_STATUS: return .simpleString(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(Int64(r.integer))
        case REDIS_REPLY_STRING: return .bulkString(bytes())
        case REDIS_REPLY_ARRAY:
            var values: [RESPValue] = []
            values.reserveCapacity(Int(r.elements))
            for i in 0..<Int(r.elements) {
                if let element = r.element[i] { values.append(convert(element)) } else { values.append(.null) }
            }
            return .array(values)
        default: return .null
        }
    }
}
