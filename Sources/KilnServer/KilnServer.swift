import Foundation
import Hummingbird
import KilnKernels
import KilnImageModels
import KilnServices
import KilnTokenizers
import KilnTransformer
import Logging
import NIOCore

/// `kiln serve`: an OpenAI-compatible HTTP server over Kiln's models. It listens at once and
/// answers /health with 503 until the models are loaded; every other route waits for them.
public enum KilnServer {
    /// Serves until SIGINT or SIGTERM (in-flight requests finish first). `onRunning` receives
    /// the bound port (useful with port 0) once the server listens.
    public static func run(_ options: ServerOptions, onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        try options.validate()
        let state = ServerState(options: options)
        let router = Router(context: BasicRequestContext.self)
        if let metrics = state.metrics { router.add(middleware: MetricsMiddleware(metrics: metrics)) }
        router.add(middleware: APIErrorMiddleware())
        if let key = options.apiKey { router.add(middleware: APIKeyMiddleware(key: Array(key.utf8))) }
        Routes(state: state).register(on: router)
        var logger = Logger(label: "kiln")
        logger.logLevel = .warning
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "kiln"),
            onServerRunning: { channel in onRunning(channel.localAddress?.port ?? options.port) },
            logger: logger)
        // SIGINT or SIGTERM: the server stops accepting and waits for the requests in flight;
        // generations still running after `shutdownGrace` seconds end with the text they have.
        let deadline = ShutdownDeadline(grace: options.shutdownGrace) { state.models?.generation.stopAll() }
        defer { deadline.cancel() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            group.addTask { try await state.load() }
            // The loader ends first (or fails, which ends the server); the server runs on.
            do {
                for try await _ in group {}
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }
}

/// Runs `action` `grace` seconds after the first SIGINT or SIGTERM.
final class ShutdownDeadline: @unchecked Sendable {  // the sources are touched on `queue` only after init
    private let queue = DispatchQueue(label: "kiln.shutdown")
    private var sources: [any DispatchSourceSignal] = []

    init(grace: Double, action: @escaping @Sendable () -> Void) {
        let queue = self.queue
        var fired = false
        for signal in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: signal, queue: queue)
            source.setEventHandler {
                guard !fired else { return }
                fired = true
                queue.asyncAfter(deadline: .now() + grace, execute: action)
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() { queue.sync { sources.forEach { $0.cancel() } } }
}

/// The loaded models, shared by the handlers; nil until loading finishes.
final class ServerState: @unchecked Sendable {  // `loaded` is guarded by `lock`
    let options: ServerOptions
    let metrics: ServerMetrics?
    private let lock = NSLock()
    private var loaded: LoadedModels?

    init(options: ServerOptions) {
        self.options = options
        metrics = options.metrics ? ServerMetrics() : nil
    }

    struct LoadedModels: @unchecked Sendable {  // read-only after loading; the index is used on `embeddingQueue` only
        let text: TextModel
        let template: ChatTemplate?
        let generation: BatchScheduler
        let embedder: SentenceEmbedder
        let embedderName: String
        let index: DocumentIndex?
        /// The image generators by their model id (`kiln-vae`, `kiln-gan`).
        let images: [String: ImageStudio]
        /// Embedding, search and image sampling run here, one request at a time (they use every core).
        let embeddingQueue = DispatchQueue(label: "kiln.embedding")

        /// Every model id this server answers to.
        var modelIDs: [String] { [text.name, embedderName] + images.keys.sorted() }
    }

    var models: LoadedModels? { lock.withLock { loaded } }

    /// The models, or 503 while they load.
    func ready() throws -> LoadedModels {
        guard let models else { throw APIError(.serviceUnavailable, "the server is loading its models", type: "server_loading") }
        return models
    }

    func load() async throws {
        let options = self.options, metrics = self.metrics
        let models = try await Task.detached { () throws -> LoadedModels in
            let locator = ModelLocator()
            let text = try TextModel(path: try locator.resolve(options.model))
            let template = try? text.chatTemplate()
            let generation = BatchScheduler(model: text, contextSize: options.contextSize, parallel: options.parallel,
                                            maximumWaiting: options.queueLimit, metrics: metrics)
            var index: DocumentIndex?
            let embedder: SentenceEmbedder
            let embedderName: String
            if let directory = options.index {
                let documents = try DocumentIndex(directory: directory, model: options.embeddingModel, mustExist: true, locator: locator)
                (index, embedder, embedderName) = (documents, documents.embedder, documents.modelFolder.lastPathComponent)
            } else {
                let folder = try locator.resolve(options.embeddingModel ?? ModelLocator.defaultEmbeddingModel)
                (embedder, embedderName) = (try SentenceEmbedder(folder: folder), folder.lastPathComponent)
            }
            return LoadedModels(text: text, template: template, generation: generation, embedder: embedder,
                                embedderName: embedderName, index: index, images: try ServerState.loadImageModels(options, locator: locator))
        }.value
        lock.withLock { loaded = models }
    }

    /// `kiln-vae` and `kiln-gan` from `--image-models` (at least one must be there), else from
    /// the models directories when they hold them.
    static func loadImageModels(_ options: ServerOptions, locator: ModelLocator) throws -> [String: ImageStudio] {
        let folders = options.imageModels.map { [URL(fileURLWithPath: $0, isDirectory: true)] } ?? locator.directories
        var studios: [String: ImageStudio] = [:]
        for kind in ImageModelKind.allCases {
            let candidates = folders.map { $0.appendingPathComponent(kind.rawValue).path }
            guard let folder = candidates.first(where: {
                FileManager.default.fileExists(atPath: ($0 as NSString).appendingPathComponent(kind.weightsFile))
            }) else { continue }
            studios["kiln-\(kind.rawValue)"] = try ImageStudio(kind: kind, directory: folder)
        }
        if let given = options.imageModels, studios.isEmpty {
            throw ServerOptions.Invalid(description: "no vae/ or gan/ checkpoint in \(given) (train one with `kiln train vae`)")
        }
        return studios
    }
}
