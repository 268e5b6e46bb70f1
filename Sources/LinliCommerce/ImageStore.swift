import Crypto
import Foundation
import LinliCore

/// Where image bytes live. The reference is the content's SHA-256, so the same image is stored
/// once and a reference can be checked without reading the object.
public protocol ObjectStore: Sendable {
    func put(_ data: Data, name: String) async throws
    func exists(_ name: String) async -> Bool
}

/// Objects as files under a directory (development: `.data/objects`).
public struct LocalDiskStore: ObjectStore {
    let root: URL

    public init(root: String) { self.root = URL(fileURLWithPath: root, isDirectory: true) }

    public func put(_ data: Data, name: String) async throws {
        let url = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if FileManager.default.fileExists(atPath: url.path) { return }
        // Written aside, then moved: a reader never sees half an image.
        let temporary = url.appendingPathExtension("tmp-\(UUID().uuidString)")
        try data.write(to: temporary)
        do {
            try FileManager.default.moveItem(at: temporary, to: url)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            if !FileManager.default.fileExists(atPath: url.path) { throw error }
        }
    }

    public func exists(_ name: String) async -> Bool { FileManager.default.fileExists(atPath: root.appendingPathComponent(name).path) }
}

/// Image uploads: checked by size and by their bytes (the declared type must be what they are).
public enum ImageUpload {
    public static let maxBytes = 2 * 1024 * 1024
    static let types: [(type: String, ext: String, magic: [UInt8])] = [
        ("image/png", "png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
        ("image/jpeg", "jpg", [0xFF, 0xD8, 0xFF]),
        ("image/webp", "webp", [0x52, 0x49, 0x46, 0x46]),
    ]

    /// The reference for `data` of `contentType`, or an error naming the field at fault.
    public static func reference(_ data: Data, contentType: String) throws(LinliError) -> String {
        guard let kind = types.first(where: { $0.type == contentType }) else {
            throw .invalid("content_type", "must be one of \(types.map(\.type).joined(separator: ", "))")
        }
        guard !data.isEmpty else { throw .invalid("data", "is required") }
        guard data.count <= maxBytes else { throw .invalid("data", "must be at most \(maxBytes) bytes") }
        let bytes = [UInt8](data.prefix(12))
        var matches = bytes.starts(with: kind.magic)
        if kind.ext == "webp" { matches = matches && bytes.count >= 12 && Array(bytes[8..<12]) == Array("WEBP".utf8) }
        guard matches else { throw .invalid("data", "is not a \(contentType) image") }
        return "img/" + Array(SHA256.hash(data: data)).hexString + "." + kind.ext
    }

    /// `invalid` unless every reference has the shape `reference` makes (`field` names the list).
    public static func checkRefs(_ refs: [String], field: String, max: Int = 9) throws(LinliError) -> [String] {
        guard refs.count <= max else { throw .invalid(field, "at most \(max) images") }
        for ref in refs {
            let parts = ref.split(separator: ".")
            guard ref.hasPrefix("img/"), parts.count == 2, parts[0].count == 68,
                parts[0].dropFirst(4).allSatisfy({ $0.isHexDigit && !$0.isUppercase }), types.contains(where: { $0.ext == parts[1] })
            else { throw .invalid(field, "must be references from UploadImage") }
        }
        return refs
    }
}
