import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import Metrics
import NIOCore
import SwiftProtobuf

/// Why the gateway ends a connection, said to the device in a `Refusal`.
struct DeviceRefusal: Error {
    let code: Linli_Device_V1_RefusalCode
    let detail: String
    init(_ code: Linli_Device_V1_RefusalCode, _ detail: String) {
        self.code = code
        self.detail = detail
    }
}

/// A device after its Hello was accepted.
struct AuthenticatedDevice {
    let tenant: TenantRef
    let device: DeviceID
    let generation: Int32
    var commitPoint: Int64
    /// The whitelist version the device holds, when a diff can start from it; nil: send it all.
    let whitelistBase: Int64?
}

extension DeviceGateway {
    /// One connection, from the challenge to its close. Nothing a device sends can end more
    /// than its own connection.
    func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let channel = connection.channel
        var logger = self.logger
        logger[metadataKey: "device.peer"] = "\(channel.remoteAddress?.description ?? "?")"
        do {
            try await connection.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                do {
                    let nonce = DeviceCredential.makeNonce()
                    var challenge = Linli_Device_V1_Challenge()
                    challenge.nonce = Data(nonce)
                    challenge.serverTimeMs = Self.nowMs()
                    challenge.protocolVersion = Self.protocolVersion
                    try await outbound.write(Self.frame(.with { $0.challenge = challenge }))
                    guard connections.count < configuration.maxConnections else {
                        throw DeviceRefusal(.unavailable, "the gateway is at its connection limit; reconnect later")
                    }
                    // A connection that does not authenticate in time is closed.
                    let helloTimer = channel.eventLoop.scheduleTask(in: .nanoseconds(configuration.helloTimeout.nanosecondsClamped)) {
                        channel.close(promise: nil)
                    }
                    guard let first = try await frames.next() else { return }
                    helloTimer.cancel()
                    guard case .hello(let hello) = try decode(first).kind else {
                        throw DeviceRefusal(.malformed, "the first frame must be a Hello")
                    }
                    var device = try await authenticate(hello, nonce: nonce)
                    logger[metadataKey: "tenant.id"] = "\(device.tenant.id)"
                    logger[metadataKey: "device.id"] = "\(device.device)"
                    var welcome = Linli_Device_V1_Welcome()
                    welcome.commitPoint = UInt64(clamping: device.commitPoint)
                    welcome.serverTimeMs = Self.nowMs()
                    welcome.heartbeatSeconds = UInt32(clamping: configuration.heartbeatSeconds)
                    welcome.maxBatch = UInt32(clamping: Self.maxBatch)
                    welcome.maxClockSkewSeconds = UInt32(clamping: configuration.maxClockSkewSeconds)
                    try await outbound.write(Self.frame(.with { $0.welcome = welcome }))
                    try await converse(device: &device, frames: &frames, outbound: outbound, channel: channel, logger: logger)
                } catch let refusal as DeviceRefusal {
                    try await refuse(refusal, outbound: outbound, logger: logger)
                } catch let tooLarge as DeviceFrame.TooLarge {
                    try await refuse(DeviceRefusal(.frameTooLarge, "\(tooLarge)"), outbound: outbound, logger: logger)
                }
            }
        } catch {
            // TLS failures, resets, a device that vanished: its connection ends, nothing else.
            logger.debug("device connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// After the Welcome: frames in, acks and commands out, until either side closes.
    private func converse(
        device: inout AuthenticatedDevice, frames: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, channel: any Channel, logger: Logger
    ) async throws {
        let (outgoing, out) = AsyncStream.makeStream(
            of: Linli_Device_V1_ServerMessage.self, bufferingPolicy: .bufferingOldest(DeviceLink.maxQueued))
        let (wakes, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let link = DeviceLink(
            device: device.device, tenant: device.tenant, generation: device.generation, outgoing: out, wakeUp: wakeUp, channel: channel)
        connections.add(link)
        let gauge = Gauge(label: MetricName.deviceConnections)
        gauge.record(connections.count)
        defer {
            connections.remove(link)
            gauge.record(connections.count)
        }
        try await presence.touch(device.device, tenant: device.tenant.id, first: true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            // The only writer once the link exists: acks, commands and the closing refusal.
            group.addTask {
                for await message in outgoing {
                    try await outbound.write(Self.frame(message))
                    if message.isRefusal { break }
                }
                channel.close(promise: nil)
            }
            // Sends due commands whenever something wakes it.
            let tenant = device.tenant
            let id = device.device
            let base = device.whitelistBase
            group.addTask {
                var sent: Set<DeviceCommandID> = []
                // What the device will hold once it has applied what this connection sent.
                var held = base
                for await _ in wakes {
                    do {
                        for (command, body) in try await self.store.takeDue(for: id, except: sent, tenant: tenant, logger: logger) {
                            var message = Linli_Device_V1_ServerMessage()
                            message.command = try Linli_Device_V1_Command(serializedBytes: Array(buffer: body))
                            link.send(message)
                            sent.insert(command)
                        }
                        if let diff = try await self.whitelists.diff(device: id, from: held, tenant: tenant, logger: logger) {
                            link.send(.with { $0.whitelist = diff })
                            held = Int64(clamping: diff.toVersion)
                        }
                    } catch {
                        logger.warning("could not send due commands or whitelist; the sweep retries", metadata: ["error": "\(error)"])
                    }
                }
            }
            link.wake()
            var lastTouch = ContinuousClock.now
            do {
                while let frame = try await frames.next() {
                    let message = try decode(frame)
                    if ContinuousClock.now - lastTouch > .seconds(5) {
                        lastTouch = .now
                        try? await presence.touch(device.device, tenant: device.tenant.id)
                    }
                    switch message.kind {
                    case .heartbeat:
                        var ack = Linli_Device_V1_HeartbeatAck()
                        ack.serverTimeMs = Self.nowMs()
                        link.send(.with { $0.heartbeatAck = ack })
                    case .events(let batch):
                        let (commit, replies) = try await ingest(batch, device: &device, logger: logger)
                        // The answers first: they are committed already, and a device may stop
                        // listening once its buffer is acknowledged.
                        for reply in replies { link.send(reply) }
                        link.send(.with { $0.commit = commit })
                    case .commandUpdate(let update):
                        guard let command = UUID(uuidString: update.commandID) else {
                            throw DeviceRefusal(.malformed, "command_update.command_id: is not a command id")
                        }
                        try await store.report(
                            DeviceCommandID(command), outcome: update.outcome, detail: update.detail, device: device.device,
                            tenant: device.tenant, logger: logger)
                    case .whitelistAck(let ack):
                        try await whitelists.acknowledge(
                            Int64(clamping: ack.version), device: device.device, tenant: device.tenant, logger: logger)
                    case .hello:
                        throw DeviceRefusal(.malformed, "hello: the connection is already authenticated")
                    case nil:
                        throw DeviceRefusal(.malformed, "the frame carries no message")
                    }
                }
            } catch let refusal as DeviceRefusal {
                count(refusal)
                link.close(refusal.code, refusal.detail)
            } catch let tooLarge as DeviceFrame.TooLarge {
                count(DeviceRefusal(.frameTooLarge, ""))
                link.close(.frameTooLarge, "\(tooLarge)")
            } catch let error as LinliError where error.code == .unavailable {
                link.close(.unavailable, "storage is unavailable; reconnect and resend from the commit point")
            }
            out.finish()
            wakeUp.finish()
            // The writer drains what is queued (a refusal last); the pump stops.
            try await group.next()
            group.cancelAll()
        }
    }

    /// Checks a Hello: the tenant, the device in it, its status and the proof.
    private func authenticate(_ hello: Linli_Device_V1_Hello, nonce: [UInt8]) async throws -> AuthenticatedDevice {
        let unknown = DeviceRefusal(.badCredential, "unknown tenant or device, or a wrong proof")
        guard DeviceCredential.clientNonceRange.contains(hello.clientNonce.count) else {
            throw DeviceRefusal(.malformed, "hello.client_nonce: must be 16 to 64 bytes")
        }
        guard let id = UUID(uuidString: hello.deviceID) else { throw DeviceRefusal(.malformed, "hello.device_id: is not a device id") }
        guard let tenant = try await tenants.find(slug: hello.tenant) else { throw unknown }
        let device = DeviceID(id)
        guard let credential = try await store.credential(device, tenant: tenant, logger: logger) else { throw unknown }
        let message = DeviceCredential.authMessage(
            nonce: nonce, clientNonce: Array(hello.clientNonce), tenant: hello.tenant, deviceID: hello.deviceID)
        guard DeviceCredential.verify(proof: Array(hello.proof), storedKey: credential.storedKey, authMessage: message) else {
            throw unknown
        }
        guard tenant.isActive else { throw DeviceRefusal(.deviceDisabled, "the tenant is suspended") }
        guard credential.status == "active" else { throw DeviceRefusal(.deviceDisabled, "the device is \(credential.status)") }
        guard
            let point = try await store.connected(
                device, generation: credential.generation, firmware: hello.firmware, tenant: tenant, logger: logger)
        else { throw DeviceRefusal(.deviceDisabled, "the device changed while connecting; reconnect") }
        let base = try await whitelists.baseline(
            device: device, reported: Int64(clamping: hello.whitelistVersion), tenant: tenant, logger: logger)
        return AuthenticatedDevice(
            tenant: tenant, device: device, generation: credential.generation, commitPoint: point, whitelistBase: base)
    }

    /// Stores a batch and answers with the new commit point: events at or below the current one
    /// are replays (already stored), events with an impossible device time are refused for good.
    private func ingest(_ batch: Linli_Device_V1_EventBatch, device: inout AuthenticatedDevice, logger: Logger)
        async throws -> (Linli_Device_V1_CommitPoint, [Linli_Device_V1_ServerMessage])
    {
        guard batch.events.count <= Self.maxBatch else {
            throw DeviceRefusal(.malformed, "events: at most \(Self.maxBatch) events in one batch")
        }
        let now = Date()
        var commit = Linli_Device_V1_CommitPoint()
        var incoming: [DeviceStore.IncomingEvent] = []
        var access: [AccessLog.Row] = []
        var upTo = device.commitPoint
        for event in batch.events.sorted(by: { $0.seq < $1.seq }) {
            guard event.seq > 0, let seq = Int64(exactly: event.seq) else {
                throw DeviceRefusal(.malformed, "events.seq: must be 1 or more")
            }
            if seq <= device.commitPoint { continue }
            upTo = max(upTo, seq)
            let time = Date(timeIntervalSince1970: TimeInterval(event.deviceTimeMs) / 1000)
            let ahead = time.timeIntervalSince(now)
            var refusedReason: String?
            if ahead > TimeInterval(configuration.maxClockSkewSeconds) {
                refusedReason =
                    "device_time_ms is \(Int64(exactly: ahead.rounded()) ?? 0) s ahead of the server; at most \(configuration.maxClockSkewSeconds) s allowed"
            } else if -ahead > Self.maxEventAge {
                refusedReason = "device_time_ms is more than 30 days old"
            }
            let kind: String
            switch event.body {
            case .access: kind = "access"
            case .status: kind = "status"
            case .plate: kind = "plate"
            case .fire: kind = "fire"
            case .meter: kind = "meter"
            case .elevator: kind = "elevator"
            case .telemetry: kind = "telemetry"
            case nil:
                kind = ""
                refusedReason = refusedReason ?? "the event carries no body"
            }
            if let refusedReason {
                var refused = Linli_Device_V1_RefusedEvent()
                refused.seq = event.seq
                refused.reason = refusedReason
                commit.refused.append(refused)
                continue
            }
            if case .access(let event) = event.body {
                access.append(AccessLog.row(seq: seq, event: event, deviceTime: time, late: -ahead > Self.lateAfter))
            }
            incoming.append(
                DeviceStore.IncomingEvent(
                    seq: seq, kind: kind, deviceTime: time, late: -ahead > Self.lateAfter,
                    body: ByteBuffer(bytes: try event.serializedBytes() as [UInt8]), event: event))
        }
        var replies: [Linli_Device_V1_ServerMessage] = []
        if upTo > device.commitPoint {
            let batch = DeviceStore.Batch(
                device: device.device, generation: device.generation, events: incoming, access: access, upTo: upTo)
            guard let result = try await ingestQueue.ingest(batch, tenant: device.tenant) else {
                throw DeviceRefusal(.deviceDisabled, "the device was disabled, revoked or given a new secret")
            }
            device.commitPoint = result.commitPoint
            replies = result.replies
            Counter(label: MetricName.deviceEvents).increment(by: result.stored)
        }
        commit.seq = UInt64(clamping: device.commitPoint)
        return (commit, replies)
    }

    private func decode(_ frame: ByteBuffer) throws -> Linli_Device_V1_DeviceMessage {
        let message: Linli_Device_V1_DeviceMessage
        do {
            message = try Linli_Device_V1_DeviceMessage(serializedBytes: Array(buffer: frame))
        } catch {
            throw DeviceRefusal(.malformed, "the frame is not a linli.device.v1.DeviceMessage")
        }
        do {
            try validate(message)
        } catch {
            throw DeviceRefusal(.malformed, error.message)
        }
        return message
    }

    /// Before the link exists: writes the refusal directly; the connection closes after.
    private func refuse(_ refusal: DeviceRefusal, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, logger: Logger) async throws {
        count(refusal)
        logger.info("device refused", metadata: ["code": "\(refusal.code)", "detail": "\(refusal.detail)"])
        try await outbound.write(Self.frame(.refusal(refusal.code, refusal.detail)))
    }

    private func count(_ refusal: DeviceRefusal) {
        Counter(label: MetricName.deviceRefusals, dimensions: [("code", "\(refusal.code)")]).increment()
    }

    static func frame(_ message: Linli_Device_V1_ServerMessage) throws -> ByteBuffer {
        ByteBuffer(bytes: try message.serializedBytes() as [UInt8])
    }

    static func nowMs() -> Int64 {
        Int64(clamping: Int((Date().timeIntervalSince1970 * 1000).rounded(.down)))
    }
}
