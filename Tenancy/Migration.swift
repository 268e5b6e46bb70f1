import Crypto
import Foundation
import LinliCore

/// One SQL migration file: `NNNN_name.sql` in `Migrations/platform` or `Migrations/tenant`.
public struct Migration: Sendable, Equatable {
    /// The number that orders it.
    public let version: Int
    /// The file name without number and extension.
    public let name: String
    /// The SQL to run.
    public let sql: String
    /// SHA-256 of the SQL, hex: an applied migration whose file changed is refused.
    public let checksum: String
    /// Its statements (`SQLScript`), split once: a tenant's migrations run thousands of times.
    public let statements: [String]

    /// Creates a migration from its file name and contents.
    public init?(fileName: String, sql: String) {
        guard fileName.hasSuffix(".sql"), let underscore = fileName.firstIndex(of: "_"),
            let version = Int(fileName[..<underscore])
        else { return nil }
        self.version = version
        self.name = String(fileName[fileName.index(after: underscore)...].dropLast(4))
        self.sql = sql
        self.checksum = SHA256.hash(data: Data(sql.utf8)).hexString
        self.statements = SQLScript.statements(sql)
    }

    // Equal when file name and text are: `statements` follows from `sql`.
    public static func == (a: Migration, b: Migration) -> Bool {
        a.version == b.version && a.name == b.name && a.sql == b.sql
    }
}

/// The ordered lists of migrations shipped with the binary.
public struct MigrationCatalog: Sendable {
    /// Migrations of the `platform` schema.
    public let platform: [Migration]
    /// Migrations of every tenant schema.
    public let tenant: [Migration]

    /// Creates a catalog from explicit lists (tests add a migration this way).
    public init(platform: [Migration], tenant: [Migration]) {
        self.platform = platform
        self.tenant = tenant
    }

    /// The migrations bundled in `Tenancy/Migrations`.
    public static func bundled() throws -> MigrationCatalog {
        guard let root = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw MigrationError("the Migrations folder is missing from the bundle")
        }
        return MigrationCatalog(
            platform: try load(root.appendingPathComponent("platform")),
            tenant: try load(root.appendingPathComponent("tenant")))
    }

    static func load(_ folder: URL) throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }
        let migrations = try names.map { name in
            let sql = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            guard let migration = Migration(fileName: name, sql: sql) else {
                throw MigrationError("\(name): expected NNNN_name.sql")
            }
            return migration
        }.sorted { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            throw MigrationError("two migrations numbered \(a.version) in \(folder.lastPathComponent)")
        }
        return migrations
    }
}

/// A migration could not be loaded or applied.
public struct MigrationError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}
