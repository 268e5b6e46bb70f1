import Crypto
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A pooled, pipelining Redis client: hiredis encodes and parses, SwiftNIO does the I/O.
///
/// Commands are spread over a few long-lived connections; each connection carries many
/// commands in flight at once. A broken connection is replaced on next use, and when Redis
/// cannot be reached every command fails fast with `RedisError.isUnavailable`.
public final class RedisClient: Service, Sendable {
    /// Where and how to connect.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Connections kept open; commands are pipelined on each.
        public var connections: Int
        /// How long to wait for a connection before reporting Redis unavailable.
        public var connectTimeout: TimeAmount
        /// How long to wait for a reply.
        public var commandTimeout: TimeAmount

        /// A configuration with the defaults for the local stack.
        public init(
            host: String = "127.0.0.1", port: Int = 6379, connections: Int = 4,
            connectTimeout: TimeAmount = .milliseconds(500), commandTimeout: TimeAmount = .seconds(2)
        ) {
            self.host = host
            self.port = port
            self.connections = max(1, connections)
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
        }
    }

    private enum Slot {
        case idle
        case connecting(EventLoopFuture<any Channel>)
        case connected(any Channel)
    }

    private let configuration: Configuration
    private let group: any EventLoopGroup
    private let slots: Mutex<[Slot]>
    private let slotCount: Int
    private let next = Atomic<Int>(0)
    private let logger: Logger

    /// Creates a client; connections open lazily.
    public init(configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.slots = Mutex(Array(repeating: Slot.idle, count: configuration.connections))
        self.slotCount = configuration.connections
        self.logger = logger
    }

    /// Runs until shutdown, then closes the connections.
    public func run() async throws {
        try? await gracefulShutdown()
        close()
    }

    /// Closes every connection.
    public func close() {
        let channels: [any Channel] = slots.withLock { states in
            defer { states = Array(repeating: .idle, count: states.count) }
            return states.compactMap { state in
                if case .connected(let channel) = state { return channel }
                return nil
            }
        }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Sends a command, e.g. `["SET", key, value]`, and returns the reply; an error reply throws.
    @discardableResult
    public func send(_ arguments: [String]) async throws -> RESPValue {
        try await send(bytes: arguments.map { Array($0.utf8) })
    }

    /// Sends a command given as raw byte strings.
    @discardableResult
    public func send(bytes arguments: [[UInt8]]) async throws -> RESPValue {
        let reply = try await sendAllowingErrorReply(arguments)
        if case .error(let message) = reply { throw RedisError.reply(message) }
        return reply
    }

    /// Runs a Lua script by its SHA-1 (EVALSHA) and loads it (EVAL) when the server lacks it.
    public func run(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RESPValue {
        let tail = [String(keys.count)] + keys + arguments
        let reply = try await sendAllowingErrorReply((["EVALSHA", script.sha1] + tail).map { Array($0.utf8) })
        if case .error(let message) = reply {
            guard message.hasPrefix("NOSCRIPT") else { throw RedisError.reply(message) }
            return try await send(["EVAL", script.source] + tail)
        }
        return reply
    }

    private func sendAllowingErrorReply(_ arguments: [[UInt8]]) async throws -> RESPValue {
        let index = next.add(1, ordering: .relaxed).oldValue % slotCount
        let channel = try await channel(at: index)
        var buffer = channel.allocator.buffer(capacity: 64)
        Hiredis.encode(arguments, into: &buffer)
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        let timeout = channel.eventLoop.scheduleTask(in: configuration.commandTimeout) {
            promise.fail(RedisError.unavailable("Redis did not answer in time"))
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        channel.writeAndFlush(RedisRequest(bytes: buffer, reply: promise)).whenFailure { _ in
            promise.fail(RedisError.unavailable("could not write to Redis"))
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            Counter(label: "linli.redis.errors").increment()
            throw error
        }
    }

    private func channel(at index: Int) async throws -> any Channel {
        let future: EventLoopFuture<any Channel> = slots.withLock { states in
            switch states[index] {
            case .connected(let channel) where channel.isActive:
                return channel.eventLoop.makeSucceededFuture(channel)
            case .connecting(let future):
                return future
            default:
                let future = connect()
                states[index] = .connecting(future)
                return future
            }
        }
        do {
            let channel = try await future.get()
            slots.withLock { states in
                if case .connecting(let pending) = states[index], pending === future { states[index] = .connected(channel) }
            }
            return channel
        } catch {
            slots.withLock { states in
                if case .connecting(let pending) = states[index], pending === future { states[index] = .idle }
            }
            logger.warning("redis connect failed", metadata: ["redis.error": "\(error)"])
            throw RedisError.unavailable("Redis is unreachable")
        }
    }

    private func connect() -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: group)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RedisChannelHandler())
                }
            }
            .connect(host: configuration.host, port: configuration.port)
    }
}

/// A Lua script known by its SHA-1, so it is sent in full only when the server lacks it.
public struct RedisScript: Sendable {
    /// The Lua source.
    public let source: String
    /// Its SHA-1 in hex, as EVALSHA wants.
    public let sha1: String

    /// Wraps a script.
    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

/// Key naming: every key of a tenant carries the hash tag `{t:<tenant>}`, so a Redis
/// Cluster keeps one tenant's keys in one slot.
public enum RedisKey {
    /// `{t:<tenant>}:<parts joined by :>`; `tenant` is a tenant id or `platform`.
    public static func tenant(_ tenant: String, _ parts: String...) -> String {
        "{t:\(tenant)}:" + parts.joined(separator: ":")
    }
}
