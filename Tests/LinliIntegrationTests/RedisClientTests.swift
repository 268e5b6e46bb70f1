import Foundation
import LinliRedis
import LinliServer
import Logging
import Testing

@Suite("Redis client on hiredis and NIO")
struct RedisClientTests {
    static func client() throws -> RedisClient {
        let configuration = try ServerConfiguration.fromEnvironment().redis
        return RedisClient(configuration: configuration, logger: Logger(label: "test"))
    }

    @Test("a thousand concurrent commands are pipelined over a few connections and all answered")
    func pipelining() async throws {
        let redis = try Self.client()
        defer { redis.close() }
        let key = RedisKey.tenant("test", "counter", UUID().uuidString)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<1000 { group.addTask { try await redis.send(["INCR", key]) } }
            try await group.waitForAll()
        }
        #expect(try await redis.send(["GET", key]).string == "1000")
        try await redis.send(["DEL", key])
    }

    @Test("binary values round-trip; error replies throw without breaking the connection")
    func replies() async throws {
        let redis = try Self.client()
        defer { redis.close() }
        let key = RedisKey.tenant("test", "bin", UUID().uuidString)
        let bytes: [UInt8] = [0, 13, 10, 255, 36, 42]
        try await redis.send(bytes: [Array("SET".utf8), Array(key.utf8), bytes, Array("EX".utf8), Array("10".utf8)])
        #expect(try await redis.send(["GET", key]) == .bulkString(bytes))
        await #expect(throws: RedisError.self) { try await redis.send(["INCR", key]) }
        #expect(try await redis.send(["PING"]) == .simpleString("PONG"))
        #expect(try await redis.send(["GET", key + ":missing"]) == .null)
        let array = try await redis.send(["MGET", key, key + ":missing"])
        #expect(array == .array([.bulkString(bytes), .null]))
    }

    @Test("scripts run by EVALSHA and fall back to EVAL after SCRIPT FLUSH")
    func scripts() async throws {
        let redis = try Self.client()
        defer { redis.close() }
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        let key = RedisKey.tenant("test", "script", UUID().uuidString)
        try await redis.send(["SCRIPT", "FLUSH"])
        #expect(try await redis.run(script, keys: [key], arguments: ["5"]) == .integer(5))
        #expect(try await redis.send(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(1)]))
        #expect(try await redis.run(script, keys: [key], arguments: ["2"]) == .integer(7))
        try await redis.send(["DEL", key])
    }

    @Test("keys carry the tenant hash tag")
    func hashTags() {
        #expect(RedisKey.tenant("0190abcd", "sess", "ff") == "{t:0190abcd}:sess:ff")
    }

    @Test("an unreachable Redis fails fast as unavailable")
    func unreachable() async throws {
        let redis = RedisClient(configuration: .init(host: "127.0.0.1", port: 1), logger: Logger(label: "test"))
        defer { redis.close() }
        let error = await #expect(throws: RedisError.self) { try await redis.send(["PING"]) }
        #expect(error?.isUnavailable == true)
    }
}
