import NIOCore

/// The gateway's framing: a 4-byte big-endian length, then that many bytes of one protobuf
/// message. A frame announcing more than `maxFrameBytes` fails the connection as soon as its
/// length is read, before any of its body is buffered.
public enum DeviceFrame {
    /// 2 MiB, as sudo's log server allows.
    public static let maxFrameBytes = 2 << 20

    /// The length announced was over the limit.
    public struct TooLarge: Error, CustomStringConvertible {
        public let length: UInt32
        public var description: String { "a frame of \(length) bytes is over the \(DeviceFrame.maxFrameBytes)-byte limit" }
    }
}

/// Splits the byte stream into frame bodies.
struct DeviceFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard length <= DeviceFrame.maxFrameBytes else { throw DeviceFrame.TooLarge(length: length) }
        let total = 4 + Int(clamping: length)
        guard buffer.readableBytes >= total else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let body = buffer.readSlice(length: Int(clamping: length)) else { return .needMoreData }
        context.fireChannelRead(NIOAny(body))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial frame at EOF is dropped: the device resends from its commit point.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Prefixes each outgoing message with its length.
struct DeviceFrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = ByteBuffer

    func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        out.writeInteger(UInt32(clamping: data.readableBytes))
        out.writeImmutableBuffer(data)
    }
}
