import Foundation

/// What `kiln serve` serves and how.
public struct ServerOptions: Sendable {
    /// A GGUF language model (a path, or a name in the models directories).
    public var model: String
    /// A sentence-transformers folder for /v1/embeddings (and the index's queries).
    public var embeddingModel: String?
    /// An index folder for /v1/search (built with `kiln index add`).
    public var index: String?
    /// A folder holding `vae/` and `gan/` checkpoints for /v1/images/generations (default: those
    /// in the models directories, when there).
    public var imageModels: String?
    public var host = "127.0.0.1"
    public var port = 8080
    /// Tokens per sequence (prompt and completion).
    public var contextSize = 2048
    /// Sequences decoded together in each step.
    public var parallel = 4
    /// Requests generating or waiting before new ones get 429.
    public var queueLimit = 64
    /// Serve GET /metrics (Prometheus text).
    public var metrics = false
    /// Seconds a shutdown waits for generations in flight before ending them.
    public var shutdownGrace = 10.0
    /// Largest request body accepted (413 beyond).
    public var maximumBodyBytes = 8 << 20
    public var apiKey: String?
    /// Allow a non-loopback address without an API key.
    public var insecure = false

    public init(model: String, embeddingModel: String? = nil, index: String? = nil) {
        self.model = model
        self.embeddingModel = embeddingModel
        self.index = index
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Refuses what must not start: a non-loopback address without a key (unless `insecure`),
    /// impossible sizes, an empty key.
    public func validate() throws {
        guard (1...65535).contains(port) || port == 0 else { throw Invalid(description: "--port must be in 0…65535") }
        guard contextSize >= 16 && contextSize <= 1 << 20 else { throw Invalid(description: "--context must be in 16…1048576") }
        guard queueLimit >= 1 && queueLimit <= 1 << 16 else { throw Invalid(description: "the queue limit must be in 1…65536") }
        guard parallel >= 1 && parallel <= 256 else { throw Invalid(description: "--parallel must be in 1…256") }
        if let apiKey, apiKey.isEmpty { throw Invalid(description: "the API key is empty") }
        if apiKey == nil && !insecure && !Self.isLoopback(host) {
            throw Invalid(description: "refusing to listen on \(host) without an API key: pass --api-key or --api-key-file (or --insecure)")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
