import ArgumentParser
import Foundation
import LinliServer
import Logging

/// The `linli` command: the server and its operator tools.
@main
struct Linli: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linli",
        abstract: "Linli (邻里) smart-community platform: server and operator tools.",
        discussion: "Settings come from LINLI_* environment variables; see ServerConfiguration.",
        subcommands: [
            Serve.self, Migrate.self, TenantCommand.self, UserCommand.self, OperatorCommand.self,
            SeedDemo.self, Bench.self,
        ])
}

/// Shared start-up for every command that talks to storage.
enum Runtime {
    /// A logger writing to standard error at `LINLI_LOG_LEVEL` (default `info`).
    static func logger(_ label: String = "linli") -> Logger {
        let level = ProcessInfo.processInfo.environment["LINLI_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in LinliLogHandler(label: label, level: level) }
        return Logger(label: label)
    }

    /// The application built from the environment.
    static func application() throws -> LinliApplication {
        try LinliApplication(configuration: .fromEnvironment(), logger: logger())
    }
}
