import Foundation
import KilnKernels
import KilnServices
import KilnTransformer

/// A client's wish to stop: set when its connection goes away, read by the scheduler.
final class Cancellation: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var cancelled = false
    func cancel() { lock.withLock { cancelled = true } }
    var isCancelled: Bool { lock.withLock { cancelled } }
}

/// Continuous batching over one set of weights: up to `parallel` sequences, each with its own
/// KV cache, decode together — one pass over every weight matrix per step for all of them — and
/// waiting requests join between steps, their prompts prefilled a batch (512 tokens) at a time
/// so a long prompt does not stall the others for long. A sequence ends at its end of
/// generation, stop string, token limit or cancellation, and its cache goes to the next request.
///
/// A sequence's tokens are those it gets alone (and those `kiln generate` gets): its prompt is
/// evaluated in the same batches, each step computes its row as a lone decoding step does, and
/// the step runs them in groups no larger than the weights' types allow (`exactStepSize`: any
/// number for the 32-value block types, 3 with Q4_K, 1 with F16).
///
/// A new prompt that begins with an earlier request's prompt (a chat's next turn) reuses the keys
/// and values that request's cache holds for it and evaluates only the rest. With weights that
/// keep their bits in any batch (`splitPromptsKeepTheirBits`) a prompt split anywhere gives the bits it gives whole, so this
/// changes no token; the earlier reply's own positions are not reused (they were evaluated one
/// token at a time, which sums attention in another order). Other weights evaluate every prompt whole.
final class BatchScheduler: @unchecked Sendable {  // the mutable state is guarded by `condition`
    let model: TextModel
    let contextSize: Int
    let parallel: Int
    let maximumWaiting: Int
    let metrics: ServerMetrics?

    struct Job: Sendable {
        var prompt: [Int]
        var maxTokens: Int
        var sampling: SamplingParameters
        var seed: UInt64
        var stop: [String]
        var ignoreEndOfGeneration = false
        /// Alternatives per token to report with log-probabilities; nil for none.
        var logprobAlternatives: Int?
    }

    enum Event: Sendable {
        case text(String)
        case finished(TokenGenerator.Result, logprobs: [TokenLogprob])
    }

    private struct Waiting {
        let job: Job
        let cancellation: Cancellation
        let continuation: AsyncThrowingStream<Event, any Error>.Continuation
        let arrival: UInt64
    }

    /// A sequence being served: its cache, how much of its prompt is in it, and its generation.
    private final class Active {
        let request: Waiting
        let cache: KVCache
        var prefilled = 0
        var state: GenerationState
        var next: Int?  // the token to evaluate in the next step
        var prefillSeconds = 0.0
        var lastToken: UInt64 = 0
        let start = monotonicNanoseconds()
        init(_ request: Waiting, cache: KVCache, state: GenerationState) { (self.request, self.cache, self.state) = (request, cache, state) }
    }

    private let condition = NSCondition()
    private var queue: [Waiting] = []
    private var stopping = false  // set by `stopAll`
    private var activeCount = 0
    /// Caches not in use, with the prompt whose keys and values each holds exactly (most recent last).
    private var freeCaches: [(cache: KVCache, prompt: [Int])] = []
    private let sequence: DecoderSequence
    /// Sequences per step that keep their lone bits; whether a split prompt keeps its bits.
    private let groupSize: Int
    private let reusesPrefixes: Bool

    init(model: TextModel, contextSize: Int, parallel: Int, maximumWaiting: Int, metrics: ServerMetrics?, pool: ThreadPool = .shared) {
        self.model = model
        self.contextSize = contextSize
        self.parallel = parallel
        self.maximumWaiting = maximumWaiting
        self.metrics = metrics
        sequence = model.sequence(contextSize: contextSize, pool: pool)
        groupSize = min(sequence.exactStepSize, sequence.batchSize)
        reusesPrefixes = sequence.splitPromptsKeepTheirBits
        let thread = Thread { [self] in loop() }
        thread.name = "kiln.generation"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Ends every generation at its next step with the text it has (a shutdown's deadline), and
    /// refuses the waiting and new requests with 503.
    func stopAll() {
        condition.withLock {
            stopping = true
            condition.signal()
        }
    }

    /// Text as it is produced, then the result. Ending the stream early (a client that left)
    /// cancels the generation before its next token.
    func run(_ job: Job, cancellation: Cancellation) throws -> AsyncThrowingStream<Event, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Event, any Error>.makeStream()
        try condition.withLock {
            guard !stopping else { throw APIError(.serviceUnavailable, "the server is shutting down", type: "server_stopping") }
            guard activeCount + queue.count < maximumWaiting else {
                throw APIError(.tooManyRequests, "the server is busy: \(activeCount + queue.count) requests are generating or waiting; retry later",
                               type: "server_busy")
            }
            queue.append(Waiting(job: job, cancellation: cancellation, continuation: continuation, arrival: monotonicNanoseconds()))
            condition.signal()
        }
        continuation.onTermination = { _ in cancellation.cancel() }
        return stream
    }

    private func loop() {
        var active: [Active] = []
        while true {
            // Admit waiting requests into free slots (sleeping when there is nothing to do).
            condition.lock()
            while queue.isEmpty && active.isEmpty { condition.wait() }
            let stopNow = stopping
            if stopNow {
                for request in queue {
                    request.continuation.finish(throwing: APIError(.serviceUnavailable, "the server is shutting down", type: "server_stopping"))
                }
                queue.removeAll()
            }
            while active.count < parallel && !queue.isEmpty {
                let request = queue.removeFirst()
                let job = request.job
                let (cache, reused) = takeCache(for: job.prompt)
                let state = GenerationState(prompt: job.prompt, maxTokens: job.maxTokens, sampling: job.sampling, seed: job.seed,
                                            stopStrings: job.stop, ignoreEndOfGeneration: job.ignoreEndOfGeneration,
                                            tokenizer: model.tokenizer, contextSize: contextSize)
                let admitted = Active(request, cache: cache, state: state)
                admitted.state.logprobAlternatives = job.logprobAlternatives
                admitted.prefilled = reused
                if state.stopReason != nil {  // max_tokens 0: nothing to evaluate
                    complete(admitted)
                    freeCaches.append((cache, []))
                } else {
                    metrics?.countReusedTokens(reused)
                    active.append(admitted)
                }
            }
            activeCount = active.count
            let waitingCount = queue.count
            condition.unlock()
            metrics?.setLoad(active: active.count, waiting: waitingCount)

            for s in active where s.state.stopReason == nil && s.request.cancellation.isCancelled {
                s.state.cancel()
                s.request.continuation.finish()
            }
            if stopNow {
                for s in active where s.state.stopReason == nil {
                    s.state.cancel()
                    complete(s)
                }
            }
            // One batch of each unfinished prompt, then one step for every decoding sequence.
            for sequenceState in active where sequenceState.state.stopReason == nil && sequenceState.prefilled < sequenceState.state.prompt.count {
                prefill(sequenceState)
            }
            let decoding = active.filter { $0.next != nil && $0.state.stopReason == nil }
            if !decoding.isEmpty { step(decoding) }

            // Free the finished.
            let (finished, running) = (active.filter { $0.state.stopReason != nil }, active.filter { $0.state.stopReason == nil })
            active = running
            if !finished.isEmpty {
                let waitingCount = condition.withLock {
                    // A prompt of one token was evaluated as a lone step, not as a batch.
                    freeCaches += finished.map { ($0.cache, reusesPrefixes && $0.state.prompt.count > 1 ? Array($0.state.prompt[..<$0.prefilled]) : []) }
                    activeCount = active.count
                    return queue.count
                }
                metrics?.setLoad(active: active.count, waiting: waitingCount)
            }
        }
    }

    /// The free cache holding the longest start of `prompt` (and how many of its tokens can be
    /// kept: all but the last, whose logits are needed), or the most recently freed, or a new one.
    /// Called with `condition` locked.
    private func takeCache(for prompt: [Int]) -> (KVCache, Int) {
        var best = freeCaches.count - 1, bestLength = 0
        for (i, free) in freeCaches.enumerated() {
            var n = 0
            while n < free.prompt.count && n < prompt.count - 1 && free.prompt[n] == prompt[n] { n += 1 }
            if n > bestLength { (best, bestLength) = (i, n) }
        }
        guard best >= 0 else { return (sequence.makeCache(), 0) }
        return (freeCaches.remove(at: best).cache, bestLength)
    }

    private func prefill(_ s: Active) {
        let prompt = s.state.prompt
        let end = min(prompt.count, s.prefilled + sequence.batchSize)
        let begin = monotonicNanoseconds()
        do {
            try sequence.forward(Array(prompt[s.prefilled..<end]), startPosition: s.prefilled, into: s.cache, runLength: prompt.count)
        } catch {
            fail(s, error)
            return
        }
        s.prefilled = end
        s.prefillSeconds += Double(monotonicNanoseconds() - begin) * 1e-9
        if end == prompt.count { advance(s, logits: sequence.logits) }
    }

    private func step(_ decoding: [Active]) {
        let groups = stride(from: 0, to: decoding.count, by: groupSize).map { Array(decoding[$0..<min(decoding.count, $0 + groupSize)]) }
        for group in groups {
            let entries = group.map { DecoderStepEntry(cache: $0.cache, token: $0.next!, position: $0.state.history.count - 1) }
            let logits: UnsafeMutableBufferPointer<Float>
            do {
                logits = try sequence.step(entries)
            } catch {
                for s in group { fail(s, error) }
                continue
            }
            let width = sequence.vocabularySize
            for (i, s) in group.enumerated() {
                advance(s, logits: UnsafeMutableBufferPointer(rebasing: logits[(i * width)..<((i + 1) * width)]))
            }
        }
    }

    /// Samples `s`'s next token from its logits and streams the text it completes.
    private func advance(_ s: Active, logits: UnsafeMutableBufferPointer<Float>) {
        if s.request.cancellation.isCancelled { s.state.cancel() }
        let continuation = s.request.continuation
        do {
            s.next = try s.state.advance(logits: logits) { continuation.yield(.text($0)) }
        } catch {
            fail(s, error)
            return
        }
        let now = monotonicNanoseconds()
        if s.state.generated.count == 1 || (s.state.generated.isEmpty && s.state.stopReason != nil) {
            metrics?.observeFirstToken(seconds: Double(now - s.request.arrival) * 1e-9)
        } else if s.lastToken != 0 {
            metrics?.observeTokenGap(seconds: Double(now - s.lastToken) * 1e-9)
        }
        s.lastToken = now
        if s.state.stopReason != nil { complete(s) }
    }

    /// Hands the finished generation's remaining text and result to its client.
    private func complete(_ s: Active) {
        let continuation = s.request.continuation
        let text = s.state.finish { continuation.yield(.text($0)) }
        let decodeSeconds = Double(monotonicNanoseconds() - s.start) * 1e-9 - s.prefillSeconds
        metrics?.countTokens(prompt: s.state.prompt.count, generated: s.state.generated.count)
        continuation.yield(.finished(TokenGenerator.Result(
            promptTokens: s.state.prompt, tokens: s.state.generated, text: text, stopReason: s.state.stopReason ?? .length,
            cachedTokens: s.state.cachedTokens, prefillSeconds: s.prefillSeconds, decodeSeconds: max(0, decodeSeconds)),
            logprobs: s.state.logprobs))
        continuation.finish()
    }

    private func fail(_ s: Active, _ error: any Error) {
        s.state.cancel()
        s.request.continuation.finish(throwing: error)
    }
}
