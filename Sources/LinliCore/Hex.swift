/// Lower-case hex of bytes, without `String(format:)` (which costs a `vsnprintf` per byte on
/// every call that hashes a session token).
extension Sequence where Element == UInt8 {
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            out.append(digits[Int(clamping: byte >> 4)])
            out.append(digits[Int(clamping: byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
