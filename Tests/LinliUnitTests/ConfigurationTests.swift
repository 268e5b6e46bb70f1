import Configuration
import LinliServer
import Testing

@Suite("Server configuration")
struct ConfigurationTests {
    @Test("defaults run the Deploy/run stack")
    func defaults() throws {
        let configuration = try ServerConfiguration(reader: ConfigReader(provider: InMemoryProvider(values: [:])))
        #expect(configuration.port == 8443)
        #expect(configuration.postgres.port == 55432)
        #expect(configuration.redis.port == 56379)
        #expect(configuration.rateLimits[.login] == RateLimit(perSecond: 2, burst: 10))
    }

    @Test("every unusable value is reported at once, by its environment variable")
    func problems() {
        let provider = InMemoryProvider(values: [
            "linli.grpc.port": 70000,
            "linli.postgres.max.connections": 0,
            "linli.postgres.connection.max.schemas": -1,
            "linli.ratelimit.write.burst": -1,
            "linli.scrypt.log.rounds": 30,
        ])
        do {
            _ = try ServerConfiguration(reader: ConfigReader(provider: provider))
            Issue.record("accepted bad configuration")
        } catch let error as ConfigurationProblem {
            #expect(error.problems.count == 5)
            for name in [
                "LINLI_GRPC_PORT", "LINLI_POSTGRES_MAX_CONNECTIONS", "LINLI_POSTGRES_CONNECTION_MAX_SCHEMAS", "LINLI_RATELIMIT_WRITE_BURST",
                "LINLI_SCRYPT_LOG_ROUNDS",
            ] {
                #expect(error.problems.contains { $0.hasPrefix(name) }, "\(name) not reported")
            }
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
