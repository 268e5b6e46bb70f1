import Foundation
import LinliAPI
import LinliCore
import NIOCore
import Synchronization

/// One authenticated device connection, as the rest of the process sees it: something to wake
/// when a command is queued, and to close with a reason.
final class DeviceLink: Sendable {
    let device: DeviceID
    let tenant: TenantRef
    let generation: Int32
    let outgoing: AsyncStream<Linli_Device_V1_ServerMessage>.Continuation
    let wakeUp: AsyncStream<Void>.Continuation
    let channel: any Channel

    /// Messages queued for a device that does not read; past it the connection closes.
    static let maxQueued = 1024

    init(
        device: DeviceID, tenant: TenantRef, generation: Int32,
        outgoing: AsyncStream<Linli_Device_V1_ServerMessage>.Continuation, wakeUp: AsyncStream<Void>.Continuation,
        channel: any Channel
    ) {
        self.device = device
        self.tenant = tenant
        self.generation = generation
        self.outgoing = outgoing
        self.wakeUp = wakeUp
        self.channel = channel
    }

    /// Queues a message for the device; a device that stopped reading (its queue full) is
    /// disconnected rather than allowed to grow the server's memory. What it misses is resent
    /// after it reconnects (commands still due, its whitelist from its version, its commit point).
    func send(_ message: Linli_Device_V1_ServerMessage) {
        if case .dropped = outgoing.yield(message) { channel.close(promise: nil) }
    }

    /// Looks for due commands soon (several wake-ups before it looks are one look).
    func wake() { wakeUp.yield() }

    /// Sends a `Refusal` and closes the connection after it.
    func close(_ code: Linli_Device_V1_RefusalCode, _ detail: String) {
        send(.refusal(code, detail))
        outgoing.finish()
    }
}

/// The devices connected to this process, by device id.
final class DeviceConnections: Sendable {
    private let links = Mutex<[UUID: DeviceLink]>([:])

    /// Adds `link`; an older connection of the same device is closed as superseded.
    func add(_ link: DeviceLink) {
        let older = links.withLock { links in
            let older = links[link.device.uuid]
            links[link.device.uuid] = link
            return older
        }
        older?.close(.superseded, "the device connected again")
    }

    /// Removes `link` unless a newer connection of its device replaced it.
    func remove(_ link: DeviceLink) {
        links.withLock { links in
            if links[link.device.uuid] === link { links[link.device.uuid] = nil }
        }
    }

    /// The connection of `device` when it belongs to the tenant with `schema`.
    func link(_ device: UUID, schema: String) -> DeviceLink? {
        links.withLock { $0[device] }.flatMap { $0.tenant.schema == schema ? $0 : nil }
    }

    var count: Int { links.withLock { $0.count } }

    /// Every connection, grouped by tenant.
    func byTenant() -> [UUID: (TenantRef, [DeviceLink])] {
        links.withLock { links in
            var result: [UUID: (TenantRef, [DeviceLink])] = [:]
            for link in links.values { result[link.tenant.id.uuid, default: (link.tenant, [])].1.append(link) }
            return result
        }
    }

    /// Closes every connection (shutdown).
    func closeAll(_ code: Linli_Device_V1_RefusalCode, _ detail: String) {
        for link in links.withLock({ Array($0.values) }) { link.close(code, detail) }
    }
}

extension Linli_Device_V1_ServerMessage {
    static func refusal(_ code: Linli_Device_V1_RefusalCode, _ detail: String) -> Self {
        var refusal = Linli_Device_V1_Refusal()
        refusal.code = code
        refusal.detail = String(detail.unicodeScalars.prefix(200))
        var message = Self()
        message.refusal = refusal
        return message
    }

    var isRefusal: Bool {
        if case .refusal = kind { return true }
        return false
    }
}
