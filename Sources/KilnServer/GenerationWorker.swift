import Foundation
import KilnKernels
import KilnServices
import KilnTransformer

/// A client's wish to stop: set when its connection goes away, read by the generation loop.
final class Cancellation: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var cancelled = false
    func cancel() { lock.withLock { cancelled = true } }
    var isCancelled: Bool { lock.withLock { cancelled } }
}

/// One sequence over the model's shared weights, generating for one request at a time on its
/// own thread. Every prompt is evaluated whole: a prefix kept from an earlier request was
/// computed in batches of other sizes, whose products round differently, so reusing it could
/// change a greedy completion. Requests beyond `maximumWaiting` are refused (429).
final class GenerationWorker: @unchecked Sendable {  // `sequence` is touched only on `queue`
    let model: TextModel
    let contextSize: Int
    let maximumWaiting: Int
    private let queue = DispatchQueue(label: "kiln.generation")
    private let lock = NSLock()
    private var waiting = 0
    private let sequence: DecoderSequence

    struct Job: Sendable {
        var prompt: [Int]
        var maxTokens: Int
        var sampling: SamplingParameters
        var seed: UInt64
        var stop: [String]
    }

    enum Event: Sendable {
        case text(String)
        case finished(TokenGenerator.Result)
    }

    init(model: TextModel, contextSize: Int, maximumWaiting: Int, pool: ThreadPool = .shared) {
        self.model = model
        self.contextSize = contextSize
        self.maximumWaiting = maximumWaiting
        sequence = model.sequence(contextSize: contextSize, pool: pool)
    }

    /// Requests generating or waiting.
    var load: Int { lock.withLock { waiting } }

    /// Text as it is produced, then the result. Ending the stream early (a client that left)
    /// cancels the generation at its next token.
    func run(_ job: Job, cancellation: Cancellation) throws -> AsyncThrowingStream<Event, any Error> {
        try lock.withLock {
            guard waiting < maximumWaiting else {
                throw APIError(.tooManyRequests, "the server is busy: \(waiting) requests are generating or waiting; retry later",
                               type: "server_busy")
            }
            waiting += 1
        }
        let (stream, continuation) = AsyncThrowingStream<Event, any Error>.makeStream()
        continuation.onTermination = { _ in cancellation.cancel() }
        queue.async { [self] in
            defer { lock.withLock { waiting -= 1 } }
            guard !cancellation.isCancelled else {
                continuation.finish()
                return
            }
            let generator = TokenGenerator(model: sequence, tokenizer: model.tokenizer)
            do {
                let result = try generator.generate(
                    prompt: job.prompt, maxTokens: job.maxTokens, sampling: job.sampling, seed: job.seed,
                    stopStrings: job.stop, onText: { continuation.yield(.text($0)) },
                    shouldContinue: { !cancellation.isCancelled })
                continuation.yield(.finished(result))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        return stream
    }
}
