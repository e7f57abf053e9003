import KilnKernels

/// How the next token is chosen from the logits. The chain runs in this order, as llama.cpp's
/// default sampler does:
///   1. penalties over the last `penaltyWindow` tokens: repetition (divide positive logits,
///      multiply negative ones), then presence and frequency (subtract);
///   2. top-k (keep the k largest);  3. top-p (smallest set with cumulative probability ≥ p);
///   4. min-p (drop tokens below p × the top probability);  5. temperature;
///   6. a draw from what is left (uniform number supplied by the caller, so tests pick it).
/// Temperature 0 skips all of it: greedy argmax over the penalized logits.
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float = 0.8
    public var topK: Int = 40
    public var topP: Float = 0.95
    public var minP: Float = 0.05
    public var repetitionPenalty: Float = 1.0
    public var presencePenalty: Float = 0
    public var frequencyPenalty: Float = 0
    public var penaltyWindow: Int = 64
    public init() {}

    public static var greedy: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = 0
        return p
    }
}

public enum Sampler {
    /// Applies the penalties to `logits` in place for the tokens in `history` (last window only).
    public static func applyPenalties(_ logits: UnsafeMutableBufferPointer<Float>, history: ArraySlice<Int>,
                                      _ p: SamplingParameters) {
        guard p.repetitionPenalty != 1 || p.presencePenalty != 0 || p.frequencyPenalty != 0 else { return }
        var counts: [Int: Int] = [:]
        for token in history.suffix(p.penaltyWindow) where logits.indices.contains(token) { counts[token, default: 0] += 1 }
        for (token, count) in counts {
            var l = logits[token]
            l = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty
            l -= Float(count) * p.frequencyPenalty + p.presencePenalty
            logits[token] = l
        }
    }

    /// The token chosen by the chain; `uniform` is a number in [0, 1).
    public static func sample(_ logits: UnsafeBufferPointer<Float>, _ p: SamplingParameters, uniform: Double) -> Int {
        guard p.temperature > 0 else { return VectorOps.argmax(logits, count: logits.count) }
        // 2. top-k (all tokens when k ≤ 0), sorted descending.
        let k = p.topK > 0 ? min(p.topK, logits.count) : logits.count
        var ids = [Int32](repeating: 0, count: k), values = [Float](repeating: 0, count: k)
        let n = ids.withUnsafeMutableBufferPointer { i in
            values.withUnsafeMutableBufferPointer { v in VectorOps.topK(logits, count: logits.count, k: k, indices: i, values: v) }
        }
        guard n > 0 else { return 0 }
        // Probabilities at temperature 1 for the cut-offs (llama.cpp applies top-p/min-p before temperature).
        let maxLogit = values[0]
        var probabilities = values.prefix(n).map { Double($0 - maxLogit) }.map { expDouble($0) }
        var total = probabilities.reduce(0, +)
        var keep = n
        if p.topP < 1 {  // 3. top-p
            var cumulative = 0.0
            for i in 0..<n {
                cumulative += probabilities[i] / total
                if cumulative >= Double(p.topP) { keep = i + 1; break }
            }
        }
        if p.minP > 0 {  // 4. min-p relative to the top token
            let threshold = Double(p.minP) * probabilities[0]
            keep = max(1, min(keep, probabilities.prefix(keep).prefix { $0 >= threshold }.count))
        }
        // 5. temperature on the survivors, 6. draw.
        probabilities = values.prefix(keep).map { expDouble(Double($0 - maxLogit) / Double(p.temperature)) }
        total = probabilities.reduce(0, +)
        var target = uniform * total
        for i in 0..<keep {
            target -= probabilities[i]
            if target < 0 { return Int(ids[i]) }
        }
        return Int(ids[keep - 1])
    }

    static func expDouble(_ x: Double) -> Double {
        // exp for the few hundred kept candidates; clamp far-negative values to zero weight.
        x < -700 ? 0 : _exp(x)
    }
}

#if canImport(Glibc)
import Glibc
private func _exp(_ x: Double) -> Double { Glibc.exp(x) }
#else
import Foundation
private func _exp(_ x: Double) -> Double { Foundation.exp(x) }
#endif

/// A reproducible uniform source for sampling (SplitMix64).
public struct SamplingRandom: Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
}

/// A generated token's log-probability under the model (log-softmax of its raw logits, before
/// penalties and temperature), with the most likely alternatives at that step.
public struct TokenLogprob: Sendable, Equatable {
    public var token: Int
    public var logprob: Float
    /// The `count` most likely tokens, most likely first (ties by id).
    public var top: [(token: Int, logprob: Float)]

    public static func == (a: Self, b: Self) -> Bool {
        a.token == b.token && a.logprob == b.logprob && a.top.map(\.token) == b.top.map(\.token) && a.top.map(\.logprob) == b.top.map(\.logprob)
    }

    /// From raw logits: log p(token) = logit − log Σ exp(logits), summed in Double.
    public init(logits: UnsafeBufferPointer<Float>, token: Int, top count: Int) {
        let maximum = logits.max() ?? 0
        var sum = 0.0
        for value in logits { sum += exp(Double(value - maximum)) }
        let logNormalizer = Double(maximum) + log(sum)
        func logprob(_ id: Int) -> Float { Float(Double(logits[id]) - logNormalizer) }
        self.token = token
        self.logprob = logprob(token)
        var best: [Int] = []  // kept sorted, at most `count` ids
        if count > 0 {
            for id in logits.indices {
                guard best.count < count || logits[id] > logits[best[best.count - 1]] else { continue }
                var at = best.count
                while at > 0 && logits[best[at - 1]] < logits[id] { at -= 1 }
                best.insert(id, at: at)
                if best.count > count { best.removeLast() }
            }
        }
        top = best.map { ($0, logprob($0)) }
    }
}
