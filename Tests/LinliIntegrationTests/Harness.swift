import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliServer
import LinliTenancy
import Logging
import ServiceLifecycle
import Testing

/// A real server on the test stack Deploy/test starts (PostgreSQL, Redis, TLS certificates
/// from the LINLI_* environment), listening on an ephemeral port, with a TLS client.
final class TestServer: Sendable {
    let app: LinliApplication
    let group: ServiceGroup
    let running: Task<Void, any Error>
    let client: GRPCClient<HTTP2ClientTransport.Posix>
    let clientRunning: Task<Void, any Error>
    let port: Int

    /// The server most tests share: limits high enough that no test trips them by accident.
    static let shared = Task { try await TestServer.start() }

    static func start(_ adjust: @Sendable (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        var configuration = try ServerConfiguration.fromEnvironment()
        configuration.port = 0
        configuration.devicePort = 0
        configuration.rollupIntervalSeconds = 3600
        for rateClass in RateClass.allCases { configuration.rateLimits[rateClass] = RateLimit(perSecond: 10_000, burst: 10_000) }
        adjust(&configuration)
        var logger = Logger(label: "linli.test")
        logger.logLevel = ProcessInfo.processInfo.environment["LINLI_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        let app = try LinliApplication(configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: app.services, logger: logger))
        let running = Task { try await group.run() }
        guard let port = try await app.server.listeningAddress?.ipv4?.port else {
            throw TestFailure("the server did not bind an IPv4 port")
        }
        let client = GRPCClient(transport: try LinliClientTransport.tls(host: "127.0.0.1", port: port, caPath: Self.caPath))
        let clientRunning = Task { try await client.runConnections() }
        return TestServer(app: app, group: group, running: running, client: client, clientRunning: clientRunning, port: port)
    }

    private init(
        app: LinliApplication, group: ServiceGroup, running: Task<Void, any Error>,
        client: GRPCClient<HTTP2ClientTransport.Posix>, clientRunning: Task<Void, any Error>, port: Int
    ) {
        self.app = app
        self.group = group
        self.running = running
        self.client = client
        self.clientRunning = clientRunning
        self.port = port
    }

    static var caPath: String { ProcessInfo.processInfo.environment["LINLI_TEST_CA"] ?? ".data/tls/ca.crt" }

    /// Shuts the client and the server down, the server gracefully.
    func stop() async {
        client.beginGracefulShutdown()
        await group.triggerGracefulShutdown()
        _ = try? await running.value
    }

    var identity: Linli_Identity_V1_IdentityService.Client<HTTP2ClientTransport.Posix> { .init(wrapping: client) }
    var notices: Linli_Property_V1_NoticeService.Client<HTTP2ClientTransport.Posix> { .init(wrapping: client) }
    var platform: Linli_Platform_V1_PlatformService.Client<HTTP2ClientTransport.Posix> { .init(wrapping: client) }
    var devices: Linli_Device_V1_DeviceService.Client<HTTP2ClientTransport.Posix> { .init(wrapping: client) }

    /// A fresh demo tenant with a unique slug.
    func newTenant() async throws -> DemoTenant {
        let slug = "test_" + UUIDv7.make().uuidString.suffix(12).lowercased()
        return try await app.seedDemoTenant(slug: slug, name: "测试物业 \(slug)", password: "test-password-1")
    }

    /// Logs `username` of `tenant` in; the metadata carries the session token.
    func login(_ tenant: DemoTenant?, _ username: String, password: String? = nil) async throws -> Metadata {
        var request = Linli_Identity_V1_LoginRequest()
        request.tenantSlug = tenant?.tenant.slug ?? ""
        request.username = username
        request.password = password ?? tenant?.password ?? ""
        let response = try await identity.login(request)
        return LinliClientTransport.bearer(response.sessionToken)
    }

    /// A platform operator's session.
    func operatorLogin() async throws -> Metadata {
        let username = "op_" + UUIDv7.make().uuidString.suffix(8).lowercased()
        _ = try await app.users.upsertOperator(username: username, displayName: "测试运营", password: "operator-password")
        return try await login(nil, username, password: "operator-password")
    }
}

extension DemoTenant {
    /// A valid PublishNotice request for this tenant's community, with a fresh request id.
    func publishRequest(
        title: String = "电梯年检", buildings: [BuildingID] = [], pinned: Bool = false,
        requestID: String = UUID().uuidString
    ) -> Linli_Property_V1_PublishNoticeRequest {
        var request = Linli_Property_V1_PublishNoticeRequest()
        request.requestID = requestID
        request.communityID = community.description
        request.title = title
        request.body = "周五 9:00 起电梯年检，请走楼梯。"
        request.category = .maintenance
        request.pinned = pinned
        request.buildingIds = buildings.map(\.description)
        return request
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The gRPC status code `body` fails with; records an issue when it succeeds.
func rpcCode<T>(_ body: () async throws -> T, sourceLocation: SourceLocation = #_sourceLocation) async -> RPCError.Code? {
    await rpcError(body, sourceLocation: sourceLocation)?.code
}

/// The `RPCError` `body` fails with; records an issue when it succeeds or fails otherwise.
func rpcError<T>(_ body: () async throws -> T, sourceLocation: SourceLocation = #_sourceLocation) async -> RPCError? {
    do {
        _ = try await body()
        Issue.record("expected the call to fail", sourceLocation: sourceLocation)
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        Issue.record("expected an RPCError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension BusinessDay {
    /// The demo community's calendar (its `time_zone` is Asia/Shanghai).
    static let demo = BusinessDay(timeZone: TimeZone(identifier: "Asia/Shanghai") ?? .current)
}

/// A room numbered `number` in the tenant's first building and a resident living in it from
/// today, linked to `user`'s app account when named; returns the resident's id.
func makeResident(
    _ server: TestServer, _ demo: DemoTenant, manager: Metadata, name: String, number: String, user: String? = nil,
    userID: String? = nil, relation: Linli_Property_V1_Relation = .owner
) async throws -> String {
    let base = Linli_Property_V1_BaseDataService.Client(wrapping: server.client)
    let room = try await base.createRoom(
        .with {
            $0.requestID = UUID().uuidString
            $0.buildingID = demo.buildings[0].description
            $0.unit = "1单元"
            $0.number = number
            $0.floor = 1
            $0.areaCentiM2 = 8_950
            $0.kind = .residence
        }, metadata: manager
    ).room
    return try await base.registerResident(
        .with {
            $0.requestID = UUID().uuidString
            $0.communityID = demo.community.description
            $0.name = name
            $0.roomID = room.id
            $0.relation = relation
            $0.userID = userID ?? user.flatMap { demo.users[$0]?.description } ?? ""
            $0.moveIn = AccessFixture.today
        }, metadata: manager
    ).resident.id
}
