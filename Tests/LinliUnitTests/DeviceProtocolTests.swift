import Foundation
import LinliAPI
import LinliCore
import NIOCore
import NIOEmbedded
import SwiftProtobuf
import Testing

@testable import LinliDevices
@testable import LinliServer

@Suite("Device protocol without network")
struct DeviceProtocolTests {
    @Test("a proof made with the secret verifies; another secret, another nonce or the stored key itself do not")
    func challengeResponse() throws {
        let secret = DeviceCredential.makeSecret()
        let stored = DeviceCredential.storedKey(secret: secret)
        let nonce = DeviceCredential.makeNonce()
        let message = DeviceCredential.authMessage(nonce: nonce, clientNonce: Array(repeating: 7, count: 16), tenant: "demo", deviceID: "d")
        let proof = DeviceCredential.proof(secret: secret, authMessage: message)
        #expect(DeviceCredential.verify(proof: proof, storedKey: stored, authMessage: message))
        #expect(
            !DeviceCredential.verify(
                proof: DeviceCredential.proof(secret: DeviceCredential.makeSecret(), authMessage: message), storedKey: stored, authMessage: message))
        let replayed = DeviceCredential.authMessage(
            nonce: DeviceCredential.makeNonce(), clientNonce: Array(repeating: 7, count: 16), tenant: "demo", deviceID: "d")
        #expect(!DeviceCredential.verify(proof: proof, storedKey: stored, authMessage: replayed), "a proof is good for one challenge")
        // Someone holding only the stored key (a copy of the database) cannot make a proof.
        #expect(
            !DeviceCredential.verify(proof: DeviceCredential.proof(secret: stored, authMessage: message), storedKey: stored, authMessage: message))
        #expect(DeviceCredential.secret(hex: secret.hexString) == secret)
        #expect(DeviceCredential.secret(hex: "zz" + String(secret.hexString.dropFirst(2))) == nil)
    }

    @Test("the nanopb bounds in wire.options are the bounds the server enforces")
    func optionsMatchLimits() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let options = try String(contentsOf: root.appendingPathComponent("Protos/linli/device/v1/wire.options"), encoding: .utf8)
        let bytesFields: Set<String> = ["Challenge.nonce", "Hello.client_nonce", "Hello.proof", "WhitelistDiff.qr_public_key"]
        var checked = 0
        for line in options.split(separator: "\n") where line.hasPrefix("linli.device.v1.") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            let path = parts[0].dropFirst("linli.device.v1.".count).split(separator: ".")
            let (message, field) = (String(path[0]), String(path[1]))
            for option in parts.dropFirst() {
                let pair = option.split(separator: ":")
                let value = try #require(Int(pair[1]))
                if pair[0] == "max_count" {
                    #expect(InputLimits.count(message, field) == value, "\(message).\(field) max_count")
                } else {
                    let nul = bytesFields.contains("\(message).\(field)") ? 0 : 1
                    #expect(InputLimits.text(message, field).maxLength == value - nul, "\(message).\(field) max_size")
                }
                checked += 1
            }
        }
        #expect(checked >= 25)
    }

    @Test("frames: a length over 2 MiB fails before its body arrives; frames split anywhere reassemble")
    func frames() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(DeviceFrameDecoder()))
        var huge = ByteBuffer()
        huge.writeInteger(UInt32(DeviceFrame.maxFrameBytes + 1))
        #expect(throws: DeviceFrame.TooLarge.self) { try channel.writeInbound(huge) }

        let good = EmbeddedChannel(handler: ByteToMessageHandler(DeviceFrameDecoder()))
        var stream = ByteBuffer()
        for body in ["hello", "", "world!"] {
            stream.writeInteger(UInt32(body.utf8.count))
            stream.writeString(body)
        }
        while stream.readableBytes > 0 {
            let piece = stream.readSlice(length: min(3, stream.readableBytes))!
            try good.writeInbound(piece)
        }
        var bodies: [String] = []
        while let frame: ByteBuffer = try good.readInbound() { bodies.append(String(buffer: frame)) }
        #expect(bodies == ["hello", "", "world!"])
    }

    @Test("device messages break the declared bounds with the field named")
    func guardedFrames() {
        var batch = Linli_Device_V1_EventBatch()
        batch.events = (1...257).map { seq in .with { $0.seq = UInt64(seq) } }
        var message = Linli_Device_V1_DeviceMessage()
        message.events = batch
        #expect(throws: LinliError.self) { try InputGuard.check(message) }
        var hello = Linli_Device_V1_Hello()
        hello.tenant = String(repeating: "t", count: 65)
        message.hello = hello
        do {
            try InputGuard.check(message)
            Issue.record("a 65-character tenant passed")
        } catch {
            #expect(error.message.contains("tenant"))
        }
    }
}
