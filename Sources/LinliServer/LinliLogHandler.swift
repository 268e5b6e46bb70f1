import Logging

/// Writes to standard error like `StreamLogHandler`, but renders metadata only for lines it
/// writes. `StreamLogHandler` renders its metadata on every change, and a call changes it
/// often (the request context adds four keys, postgres-nio one per query), for lines that at
/// the default level are never written.
public struct LinliLogHandler: LogHandler {
    private var stream: StreamLogHandler
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level

    /// A handler for `label` writing lines at `level` and above.
    public init(label: String, level: Logger.Level) {
        stream = StreamLogHandler.standardError(label: label)
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        if let explicit = event.metadata {
            event.metadata = metadata.merging(explicit) { $1 }
        } else {
            event.metadata = metadata
        }
        if let provider = metadataProvider {
            event.metadata = provider.get().merging(event.metadata ?? [:]) { $1 }
        }
        stream.log(event: event)
    }
}
