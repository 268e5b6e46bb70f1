import Crypto
import Foundation

/// A device's secret and the challenge-response that proves it (wire.proto, "Authentication").
///
/// The server keeps only `storedKey = SHA-256(HMAC(secret, "Client Key"))`. A proof is
/// `clientKey XOR HMAC(storedKey, authMessage)`: the server recovers `clientKey` from it and
/// checks its hash, so the stored key verifies proofs but cannot make one (SCRAM's scheme; the
/// secret is 32 random bytes, so it needs no salt or iterations).
public enum DeviceCredential {
    /// The secret's length in bytes; shown to staff as 64 hex characters.
    public static let secretBytes = 32
    public static let nonceBytes = 32
    public static let clientNonceRange = 16...64

    /// A new random secret.
    public static func makeSecret() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<secretBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// A new random challenge nonce.
    public static func makeNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// What the server stores for `secret`.
    public static func storedKey(secret: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: clientKey(secret: secret)))
    }

    /// The message both sides sign.
    public static func authMessage(nonce: [UInt8], clientNonce: [UInt8], tenant: String, deviceID: String) -> [UInt8] {
        nonce + clientNonce + Array(tenant.utf8) + Array(",".utf8) + Array(deviceID.utf8)
    }

    /// The device's side: the proof for `authMessage`.
    public static func proof(secret: [UInt8], authMessage: [UInt8]) -> [UInt8] {
        let signature = hmac(key: storedKey(secret: secret), authMessage)
        return zip(clientKey(secret: secret), signature).map { $0 ^ $1 }
    }

    /// The server's side: whether `proof` was made with the secret behind `storedKey`.
    public static func verify(proof: [UInt8], storedKey: [UInt8], authMessage: [UInt8]) -> Bool {
        guard proof.count == 32, storedKey.count == 32 else { return false }
        let signature = hmac(key: storedKey, authMessage)
        let clientKey = zip(proof, signature).map { $0 ^ $1 }
        let hashed = Array(SHA256.hash(data: clientKey))
        return zip(hashed, storedKey).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Parses a secret from its 64 hex characters.
    public static func secret(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == secretBytes * 2 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(secretBytes)
        for pair in stride(from: 0, to: digits.count, by: 2) {
            guard let high = nibble(digits[pair]), let low = nibble(digits[pair + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func nibble(_ digit: UInt8) -> UInt8? {
        // Upper-case letters read as lower-case ones: A–F are 0x41–0x46, a–f 0x61–0x66.
        let lower = (0x41...0x46).contains(digit) ? digit | 0x20 : digit
        return hexDigits.firstIndex(of: lower).map { UInt8(truncatingIfNeeded: $0) }
    }

    private static func clientKey(secret: [UInt8]) -> [UInt8] {
        hmac(key: secret, Array("Client Key".utf8))
    }

    private static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}
