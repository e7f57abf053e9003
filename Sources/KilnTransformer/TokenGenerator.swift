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
        var random = SamplingRandom(seed: seed)
        let start = monotonicNanoseconds()
        // At least the last prompt token is evaluated, so its logits are fresh.
        let reused = max(0, min(cachedPrefix, prompt.count - 1))
        try model.forward(Array(prompt[reused...]), startPosition: reused)
        let prefillDone = monotonicNanoseconds()
        var history = prompt
        var evaluated = prompt.count  // leading tokens of `history` in the cache
        var generated: [Int] = []
        var stream = StreamingDetokenizer(tokenizer: tokenizer, skipSpecial: true)
        var emittedText = ""  // text already passed to onText
        var pending = ""      // decoded text not yet passed on: at most the new piece + (longest stop − 1)
        var reason = StopReason.length
        let holdBack = max(0, (stopStrings.map(\.count).max() ?? 0) - 1)
        while generated.count < maxTokens {
            if !shouldContinue() {
                reason = .cancelled
                break
            }
            Sampler.applyPenalties(model.logits, history: history[...], sampling)
            let token = Sampler.sample(UnsafeBufferPointer(model.logits), sampling, uniform: random.next())
            if !ignoreEndOfGeneration && tokenizer.specialTokens.endOfGeneration.contains(token) {
                reason = .eos
                break
            }
            generated.append(token)
            history.append(token)
            pending += try stream.append(token)
            // Only the held-back tail can contain a stop string that was not complete before.
            if let range = stopStrings.compactMap({ pending.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
                pending = String(pending[..<range.lowerBound])
                reason = .stop
                break
            }
            // Pass on all but the last (longest stop − 1) characters, which a stop string could still claim.
            if pending.count > holdBack {
                let ready = String(pending.dropLast(holdBack))
                onText(ready)
                emittedText += ready
                pending = String(pending.suffix(holdBack))
            }
            if generated.count == maxTokens { break }
            if history.count >= model.contextSize {
                throw LanguageModelFailure.contextFull(needed: history.count + 1, available: model.contextSize)
            }
            try model.forward([token], startPosition: history.count - 1)
            evaluated += 1
        }
        if reason != .stop { pending += stream.finish() }
        if !pending.isEmpty { onText(pending) }
        let text = emittedText + pending
        let end = monotonicNanoseconds()
        return Result(promptTokens: prompt, tokens: generated, text: text, stopReason: reason, cachedTokens: Array(history[..<evaluated]),
                      prefillSeconds: Double(prefillDone - start) * 1e-9, decodeSeconds: Double(end - prefillDone) * 1e-9)
    }
}
