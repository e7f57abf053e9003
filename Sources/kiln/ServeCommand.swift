import ArgumentParser
import Foundation
import KilnKernels
import KilnServer
import KilnServices

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the models over an OpenAI-compatible HTTP API.",
        discussion: """
            Routes: POST /v1/chat/completions, /v1/completions (both with "stream": true for \
            server-sent events), /v1/embeddings, /v1/images/generations (kiln-vae, kiln-gan), /v1/search (with --index), \
            /tokenize, /detokenize; \
            GET /v1/models, /health (503 while loading), /metrics (with --metrics). Up to --parallel \
            sequences decode together, one pass over the weights per step; each gets the tokens it \
            would get alone. Errors use OpenAI's shape. With a key, every \
            route but /health needs "Authorization: Bearer KEY". Sampling fields: max_tokens, temperature, \
            top_p, top_k, min_p, seed, stop, presence/frequency/repeat penalties, ignore_eos, \
            logprobs/top_logprobs. SIGINT or SIGTERM stops accepting requests, lets those in flight \
            finish for --shutdown-grace seconds, ends the rest with the text they have, and exits 0.
            """
    )

    @Option(help: "A .gguf language model.") var model = ModelLocator.defaultLanguageModel
    @Option(help: "A sentence-transformers folder (default: the index's model, else \(ModelLocator.defaultEmbeddingModel)).")
    var embeddingModel: String?
    @Option(help: "An index folder (kiln index add) to serve /v1/search from.") var index: String?
    @Option(help: "A folder with vae/ and gan/ checkpoints (default: those in the models directories).") var imageModels: String?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port).") var port = 8080
    @Option(help: "Context size in tokens (prompt and completion).") var context = 2048
    @Option(help: "Sequences decoded together (continuous batching).") var parallel = 4
    @Option(help: "Requests generating or waiting before new ones are refused with 429.") var queueLimit = 64
    @Flag(help: "Serve GET /metrics (Prometheus text).") var metrics = false
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Seconds a shutdown waits for generations in flight before ending them with the text they have.")
    var shutdownGrace = 10.0
    @Option(help: "Require this API key.") var apiKey: String?
    @Option(help: "Read the API key from this file (its first line).") var apiKeyFile: String?
    @Flag(help: "Allow a non-loopback address without an API key.") var insecure = false

    func validate() throws {
        if apiKey != nil && apiKeyFile != nil { throw ValidationError("give --api-key or --api-key-file, not both") }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be in 1…1024") }
        guard shutdownGrace.isFinite, (0...3600).contains(shutdownGrace) else { throw ValidationError("--shutdown-grace must be in 0…3600 seconds") }
    }

    func run() throws {
        if let threads { setenv("KILN_THREADS", String(threads), 1) }
        var options = ServerOptions(model: model, embeddingModel: embeddingModel, index: index)
        options.imageModels = imageModels
        (options.parallel, options.metrics, options.shutdownGrace) = (parallel, metrics, shutdownGrace)
        (options.host, options.port, options.contextSize, options.queueLimit, options.insecure) = (host, port, context, queueLimit, insecure)
        options.apiKey = apiKey
        if let apiKeyFile {
            guard let text = String(validating: [UInt8](try readFile(apiKeyFile)), as: UTF8.self) else {
                throw CLIError("\(apiKeyFile) is not valid UTF-8")
            }
            options.apiKey = text.split(separator: "\n", omittingEmptySubsequences: false).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        }
        do { try options.validate() } catch { throw CLIError("\(error)") }
        // The server's lifecycle turns SIGINT and SIGTERM into a graceful shutdown through signal
        // sources, which only see a signal whose default action (ending the process) is off.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let host = self.host
        Task.detached {
            do {
                try await KilnServer.run(options) { port in
                    let threads = ThreadPool.shared.threadCount
                    FileHandle.standardError.write(Data("kiln serve: listening on http://\(host):\(port) (\(threads) threads, OpenBLAS core \(BLAS.coreName))\n".utf8))
                }
            } catch {
                outcome.fail(error)
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw CLIError("\(error)") }
    }

    /// The server task's error, handed to the waiting main thread.
    final class Outcome: @unchecked Sendable {  // written before `done` is signalled, read after
        private(set) var error: (any Error)?
        func fail(_ error: any Error) { self.error = error }
    }
}
