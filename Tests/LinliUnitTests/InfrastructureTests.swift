import Foundation
import GRPCCore
import LinliAPI
import NIOCore
import Testing

@testable import LinliIdentity
@testable import LinliRedis
@testable import LinliServer
@testable import LinliTenancy

@Suite("Infrastructure without network")
struct InfrastructureTests {
    @Test("hiredis encodes commands as RESP arrays of bulk strings, binary-safe")
    func encode() {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        Hiredis.encode([Array("SET".utf8), Array("k".utf8), [0, 13, 10]], into: &buffer)
        #expect(
            buffer.readBytes(length: buffer.readableBytes) == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n".utf8) + [0, 13, 10] + Array("\r\n".utf8))
    }

    @Test("the hiredis reader parses nested, null and error replies, across split reads")
    func parse() throws {
        let reader = HiredisReader()
        let wire = Array("*4\r\n:42\r\n$-1\r\n*2\r\n+OK\r\n$2\r\nhi\r\n-ERR nope\r\n".utf8)
        reader.feed(ByteBuffer(bytes: wire[0..<9]))
        #expect(try reader.next() == nil)
        reader.feed(ByteBuffer(bytes: wire[9...]))
        #expect(
            try reader.next() == .array([.integer(42), .null, .array([.simpleString("OK"), .bulkString(Array("hi".utf8))]), .error("ERR nope")]))
        #expect(try reader.next() == nil)
        reader.feed(ByteBuffer(bytes: Array("?garbage\r\n".utf8)))
        #expect(throws: RedisError.self) { try reader.next() }
    }

    @Test("SQL scripts split on semicolons outside strings, comments and dollar quotes")
    func sqlScript() {
        let script = """
            -- a comment; not a statement
            CREATE TABLE a (x text DEFAULT ';');
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
            /* block; comment */ INSERT INTO a VALUES ('it''s; fine');
            """
        let statements = SQLScript.statements(script)
        #expect(statements.count == 3)
        #expect(statements[1].contains("SELECT 1; $body$"))
        #expect(statements[2].hasSuffix("('it''s; fine')"))
    }

    @Test("scrypt hashes verify, differ per salt, and reject wrong passwords")
    func passwords() throws {
        let hasher = PasswordHasher(logRounds: 10)
        let one = try hasher.hash("正确的密码 horse")
        let two = try hasher.hash("正确的密码 horse")
        #expect(one != two)
        #expect(one.hasPrefix("scrypt$10$"))
        #expect(hasher.verify("正确的密码 horse", against: one))
        #expect(!hasher.verify("正确的密码 hors", against: one))
        #expect(!hasher.verify("anything", against: "not-a-hash"))
    }

    @Test("every RPC the server registers has exactly one entry in the method policy")
    func policyCoversEveryMethod() {
        let descriptors = [
            Grpc_Health_V1_Health.Method.descriptors,
            Linli_Identity_V1_IdentityService.Method.descriptors,
            Linli_Platform_V1_PlatformService.Method.descriptors,
            Linli_Property_V1_NoticeService.Method.descriptors,
            Linli_Property_V1_WorkOrderService.Method.descriptors,
            Linli_Property_V1_ComplaintService.Method.descriptors,
            Linli_Property_V1_HotlineService.Method.descriptors,
            Linli_Property_V1_VisitorService.Method.descriptors,
            Linli_Property_V1_ParcelService.Method.descriptors,
            Linli_Property_V1_ItemReleaseService.Method.descriptors,
            Linli_Property_V1_BaseDataService.Method.descriptors,
            Linli_Property_V1_PetService.Method.descriptors,
            Linli_Property_V1_PatrolService.Method.descriptors,
            Linli_Property_V1_InboxService.Method.descriptors,
            Linli_Billing_V1_BillingService.Method.descriptors,
            Linli_Device_V1_DeviceService.Method.descriptors,
            Linli_Device_V1_AccessService.Method.descriptors,
            Linli_Device_V1_AlarmService.Method.descriptors,
            Linli_Device_V1_MeterService.Method.descriptors,
            Linli_Device_V1_BroadcastService.Method.descriptors,
            Linli_Parking_V1_ParkingService.Method.descriptors,
            Linli_Commerce_V1_PointsService.Method.descriptors,
            Linli_Commerce_V1_MerchantService.Method.descriptors,
            Linli_Commerce_V1_OrderService.Method.descriptors,
            Linli_Commerce_V1_CouponService.Method.descriptors,
            Linli_Commerce_V1_GroupBuyService.Method.descriptors,
        ].flatMap { $0 }.map(\.fullyQualifiedMethod)
        #expect(Set(descriptors) == Set(MethodPolicy.rules.keys))
        #expect(
            MethodPolicy.rules.filter { $0.value.permission == .public }.keys.sorted()
                == ["grpc.health.v1.Health/Check", "grpc.health.v1.Health/Watch", "linli.identity.v1.IdentityService/Login"])
    }

    @Test("a connection is retired once it has served its budget of distinct tenant schemas, and counts afresh after")
    func schemaBudgetRetires() {
        let budget = SchemaBudget(perConnection: 3)
        #expect(!budget.spent(1, on: "t_a"))
        #expect(!budget.spent(1, on: "t_a"))  // the same schema again costs nothing
        #expect(!budget.spent(2, on: "t_b"))  // another connection has a budget of its own
        #expect(!budget.spent(1, on: "t_b"))
        #expect(budget.spent(1, on: "t_c"))
        // A connection id is not reused by the pool; were it, it would start afresh.
        #expect(!budget.spent(1, on: "t_d"))
        #expect(!budget.spent(2, on: "t_c"))
        #expect(budget.spent(2, on: "t_d"))
    }
}
