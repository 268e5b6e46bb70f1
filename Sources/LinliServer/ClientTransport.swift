import GRPCCore
import GRPCNIOTransportHTTP2

/// The TLS transport a Linli client uses: the load generator, the integration tests and any
/// Swift partner app that trusts the deployment's CA.
public enum LinliClientTransport {
    /// A transport to `host:port` that trusts only the CA certificate at `caPath`.
    public static func tls(host: String, port: Int, caPath: String) throws -> HTTP2ClientTransport.Posix {
        try HTTP2ClientTransport.Posix(
            target: .ipv4(address: host, port: port),
            transportSecurity: .tls { tls in
                tls.trustRoots = .certificates([.file(path: caPath, format: .pem)])
            })
    }

    /// Call metadata carrying a session token.
    public static func bearer(_ token: String) -> Metadata {
        ["authorization": "Bearer \(token)"]
    }

    /// Call metadata carrying a partner app's API key.
    public static func apiKey(_ secret: String) -> Metadata {
        var metadata = Metadata()
        metadata.addString(secret, forKey: "x-api-key")
        return metadata
    }
}
