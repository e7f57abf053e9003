import Foundation
import KilnKernels
import KilnTokenizers

/// Generates text with a language model: prefill the prompt, then sample one token at a time,
/// streaming text as it becomes complete. Stop strings are held back while they could still
/// match, so streamed text never contains (part of) a stop string.
public final class TokenGenerator {
    public let model: any LanguageModel
    public let tokenizer: any Tokenizer

    /// `cancelled`: `shouldContinue` answered false (a client that went away).
    public enum StopReason: String, Sendable, Codable { case length, eos, stop, cancelled }

    public struct Result: Sendable {
        public var promptTokens: [Int]
        public var tokens: [Int]
        public var text: String
        public var stopReason: StopReason
        /// The tokens whose keys and values the model's cache holds afterwards (the prompt and
        /// the generated tokens that were evaluated: not the last one when generation stopped
        /// at a length or stop string), for the next call's `cachedPrefix`.
        public var cachedTokens: [Int]
        public var prefillSeconds: Double
        public var decodeSeconds: Double

        public init(promptTokens: [Int], tokens: [Int], text: String, stopReason: StopReason, cachedTokens: [Int],
                    prefillSeconds: Double, decodeSeconds: Double) {
            (self.promptTokens, self.tokens, self.text, self.stopReason) = (promptTokens, tokens, text, stopReason)
            (self.cachedTokens, self.prefillSeconds, self.decodeSeconds) = (cachedTokens, prefillSeconds, decodeSeconds)
        }
    }

    public init(model: any LanguageModel, tokenizer: any Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// - Parameters:
    ///   - cachedPrefix: how many leading prompt tokens are already in the model's KV cache from
    ///     an earlier call (a chat's previous turns); only the rest is prefilled.
    ///   - shouldContinue: asked before each token; false ends the generation as `cancelled`.
    ///   - onText: receives text as it is produced (never part of a stop string).
    public func generate(
        prompt: [Int], cachedPrefix: Int = 0, maxTokens: Int, sampling: SamplingParameters, seed: UInt64 = 0,
        stopStrings: [String] = [], ignoreEndOfGeneration: Bool = false,
        onText: (String) -> Void = { _ in }, shouldContinue: () -> Bool = { true }
    ) throws -> Result {
        guard !prompt.isEmpty else { throw LanguageModelFailure.contextFull(needed: 0, available: model.contextSize) }
        var state = GenerationState(prompt: prompt, maxTokens: maxTokens, sampling: sampling, seed: seed, stopStrings: stopStrings,
                                    ignoreEndOfGeneration: ignoreEndOfGeneration, tokenizer: tokenizer, contextSize: model.contextSize)
        let start = monotonicNanoseconds()
        // At least the last prompt token is evaluated, so its logits are fresh.
        let reused = max(0, min(cachedPrefix, prompt.count - 1))
        try model.forward(Array(prompt[reused...]), startPosition: reused)
        let prefillDone = monotonicNanoseconds()
        while true {
            if !shouldContinue() {
                state.cancel()
                break
            }
            guard let token = try state.advance(logits: model.logits, onText: onText) else { break }
            try model.forward([token], startPosition: state.history.count - 1)
        }
        let text = state.finish(onText: onText)
        let end = monotonicNanoseconds()
        return Result(promptTokens: prompt, tokens: state.generated, text: text, stopReason: state.stopReason ?? .length,
                      cachedTokens: state.cachedTokens,
                      prefillSeconds: Double(prefillDone - start) * 1e-9, decodeSeconds: Double(end - prefillDone) * 1e-9)
    }
}

/// One sequence's generation after its prompt: penalties over its history, sampling, the end of
/// generation, stop strings (held back while they could still match, so streamed text never
/// holds part of one) and text as it completes. `TokenGenerator` drives one over a model; a
/// batch of sequences drives one per sequence, feeding each its own logits.
public struct GenerationState {
    public typealias StopReason = TokenGenerator.StopReason
    public let prompt: [Int]
    /// The prompt and the tokens generated so far.
    public private(set) var history: [Int]
    public private(set) var generated: [Int] = []
    /// Set when the generation has ended.
    public private(set) var stopReason: StopReason?
    /// Each generated token's log-probability and `logprobAlternatives` alternatives, when asked
    /// for (`logprobAlternatives` not nil).
    public private(set) var logprobs: [TokenLogprob] = []
    public var logprobAlternatives: Int?
    private let maxTokens: Int
    private let sampling: SamplingParameters
    private var random: SamplingRandom
    private let stopStrings: [String]
    private let holdBack: Int
    private let ignoreEndOfGeneration: Bool
    private let endOfGeneration: Set<Int>
    private let contextSize: Int
    private var stream: StreamingDetokenizer
    private var emittedText = ""  // text already passed on
    private var pending = ""      // decoded text not yet passed on: at most the new piece + (longest stop − 1)

    public init(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, seed: UInt64, stopStrings: [String] = [],
                ignoreEndOfGeneration: Bool = false, tokenizer: any Tokenizer, contextSize: Int) {
        self.prompt = prompt
        history = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        random = SamplingRandom(seed: seed)
        self.stopStrings = stopStrings
        holdBack = max(0, (stopStrings.map(\.count).max() ?? 0) - 1)
        self.ignoreEndOfGeneration = ignoreEndOfGeneration
        endOfGeneration = Set(tokenizer.specialTokens.endOfGeneration)
        self.contextSize = contextSize
        stream = StreamingDetokenizer(tokenizer: tokenizer, skipSpecial: true)
        if maxTokens <= 0 { stopReason = .length }
    }

    /// Samples the next token from the logits of the last evaluated token (penalties are applied
    /// to them in place) and passes on the text it completes. Returns the token to evaluate next,
    /// or nil when the generation has ended (`stopReason` says why).
    public mutating func advance(logits: UnsafeMutableBufferPointer<Float>, onText: (String) -> Void) throws -> Int? {
        guard stopReason == nil else { return nil }
        let raw = logprobAlternatives != nil ? Array(logits) : []
        Sampler.applyPenalties(logits, history: history[...], sampling)
        let token = Sampler.sample(UnsafeBufferPointer(logits), sampling, uniform: random.next())
        if !ignoreEndOfGeneration && endOfGeneration.contains(token) {
            stopReason = .eos
            return nil
        }
        if let count = logprobAlternatives {
            raw.withUnsafeBufferPointer { logprobs.append(TokenLogprob(logits: $0, token: token, top: count)) }
        }
        generated.append(token)
        history.append(token)
        pending += try stream.append(token)
        // Only the held-back tail can contain a stop string that was not complete before.
        if let range = stopStrings.compactMap({ pending.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            pending = String(pending[..<range.lowerBound])
            stopReason = .stop
            return nil
        }
        // Pass on all but the last (longest stop − 1) characters, which a stop string could still claim.
        if pending.count > holdBack {
            let ready = String(pending.dropLast(holdBack))
            onText(ready)
            emittedText += ready
            pending = String(pending.suffix(holdBack))
        }
        if generated.count >= maxTokens {
            stopReason = .length
            return nil
        }
        if history.count >= contextSize { throw LanguageModelFailure.contextFull(needed: history.count + 1, available: contextSize) }
        return token
    }

    /// Ends the generation as `cancelled` (a client that went away).
    public mutating func cancel() {
        if stopReason == nil { stopReason = .cancelled }
    }

    /// Passes on the text still held back and returns the whole text.
    public mutating func finish(onText: (String) -> Void) -> String {
        if stopReason != .stop { pending += stream.finish() }
        if !pending.isEmpty { onText(pending) }
        emittedText += pending
        pending = ""
        return emittedText
    }

    /// The tokens whose keys and values are in the cache: all of `history` but a last token that
    /// ended the generation (length or stop) without being evaluated.
    public var cachedTokens: [Int] {
        (stopReason == .length || stopReason == .stop) && !generated.isEmpty ? Array(history.dropLast()) : history
    }
}
