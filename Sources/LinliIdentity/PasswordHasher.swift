import Crypto
import Foundation
import LinliCore
import _CryptoExtras

/// Hashes passwords with scrypt and verifies them in constant time.
///
/// Stored form: `scrypt$<log2 N>$<r>$<p>$<salt base64>$<hash base64>`, so the cost can be
/// raised later without breaking existing hashes.
public struct PasswordHasher: Sendable {
    /// log2 of scrypt's N.
    public let logRounds: Int

    /// Creates a hasher; 15 (N = 32768, 32 MiB) in production, lower in tests.
    public init(logRounds: Int = 15) { self.logRounds = logRounds }

    /// Hashes `password` with a fresh random salt.
    public func hash(_ password: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var rng = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = rng.next() }
        let key = try derive(password, salt: salt, logRounds: logRounds, blockSize: 8, parallelism: 1)
        return "scrypt$\(logRounds)$8$1$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
    }

    /// Whether `password` matches `stored`. A malformed hash never matches.
    public func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$").map(String.init)
        guard parts.count == 6, parts[0] == "scrypt", let logN = Int(parts[1]), let r = Int(parts[2]),
            let p = Int(parts[3]), (1...20).contains(logN),
            let salt = Data(base64Encoded: parts[4]), let expected = Data(base64Encoded: parts[5]),
            let actual = try? derive(password, salt: [UInt8](salt), logRounds: logN, blockSize: r, parallelism: p)
        else { return false }
        return constantTimeEqual(actual, [UInt8](expected))
    }

    /// Spends the same time as a real verification, for unknown users (no timing oracle).
    public func burn(_ password: String) {
        _ = try? derive(password, salt: [UInt8](repeating: 0, count: 16), logRounds: logRounds, blockSize: 8, parallelism: 1)
    }

    private func derive(_ password: String, salt: [UInt8], logRounds: Int, blockSize: Int, parallelism: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: 32,
            rounds: 1 << logRounds, blockSize: blockSize, parallelism: parallelism)
        return key.withUnsafeBytes { [UInt8]($0) }
    }

    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

/// Random secrets and their hashes.
public enum Secret {
    /// 256 random bits, base64url without padding.
    static func random() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = rng.next() }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// SHA-256 of `secret`, in hex.
    public static func hashHex(_ secret: String) -> String {
        SHA256.hash(data: Array(secret.utf8)).hexString
    }

    /// SHA-256 of `secret`.
    static func hash(_ secret: String) -> Data {
        Data(SHA256.hash(data: Array(secret.utf8)))
    }
}
