import Foundation
import KilnKernels
import KilnTestSupport
import Testing

/// The fused attention kernel against the materialized Double reference (tolerance 2e-5 relative,
/// floor 1) for every mode the models use, its backward against the reference and against finite
/// differences, and the image models' self-attention block against the PyTorch golden vector.
@Suite struct AttentionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let shape: AttentionShape
        let scale: Float
        let masking: AttentionMasking
        let padded: Bool
        var testDescription: String { name }
    }

    static var cases: [Case] {
        var cases: [Case] = []
        // Llama prefill: 9 heads over 3 KV heads, head dim 64, causal; key counts straddle the 64-key block.
        for n in [1, 5, 63, 64, 65, 130] {
            cases.append(Case(name: "llama prefill \(n)", shape: AttentionShape(queryCount: n, keyCount: n, headCount: 9, kvHeadCount: 3, headDimension: 64),
                              scale: 1 / 8, masking: .causal(queryOffset: 0), padded: false))
        }
        // Llama decode: one query against a KV cache with room for 200 positions, 77 in use.
        var decode = AttentionShape(queryCount: 1, keyCount: 77, headCount: 9, kvHeadCount: 3, headDimension: 64)
        decode.keyPositionStride = 3 * 64
        decode.valuePositionStride = 3 * 64
        cases.append(Case(name: "llama decode", shape: decode, scale: 1 / 8, masking: .causal(queryOffset: 76), padded: false))
        // Chunked prefill: 10 new queries after 30 cached keys.
        cases.append(Case(name: "llama chunk", shape: AttentionShape(queryCount: 10, keyCount: 40, headCount: 4, kvHeadCount: 2, headDimension: 16),
                          scale: 0.25, masking: .causal(queryOffset: 30), padded: false))
        // Prefill of two tokens into a cache laid out as a decoder keeps it (batch stride = whole cache).
        var cached = AttentionShape(queryCount: 2, keyCount: 2, headCount: 9, kvHeadCount: 3, headDimension: 64)
        cached.keyBatchStride = 256 * 192
        cached.valueBatchStride = 256 * 192
        cases.append(Case(name: "llama prefill into cache", shape: cached, scale: 1 / 8, masking: .causal(queryOffset: 0), padded: false))
        // BERT: bidirectional, batch of 3 with key padding.
        cases.append(Case(name: "bert padded", shape: AttentionShape(batchCount: 3, queryCount: 37, keyCount: 37, headCount: 12, headDimension: 32),
                          scale: 1 / 32.0.squareRoot().float, masking: .bidirectional, padded: true))
        // SAGAN: scale 1, head dim 8, value dim 64, 49 and 196 positions, batch 2.
        for n in [49, 196] {
            cases.append(Case(name: "sagan \(n)", shape: AttentionShape(batchCount: 2, queryCount: n, keyCount: n, headCount: 1, headDimension: 8, valueDimension: 64),
                              scale: 1, masking: .bidirectional, padded: false))
        }
        return cases
    }

    static func inputs(_ c: Case, seed: UInt64) -> (q: [Float], k: [Float], v: [Float], mask: [UInt8]?) {
        var rng = SeededGenerator(seed: seed)
        let q = rng.floats(c.shape.queryExtent, in: -2...2)
        let k = rng.floats(c.shape.keyExtent + c.shape.keyPositionStride * 3, in: -2...2)
        let v = rng.floats(c.shape.valueExtent + c.shape.valuePositionStride * 3)
        var mask: [UInt8]? = nil
        if c.padded {
            // Batch item b keeps its first keyCount − 7b keys; item 2 also hides key 3 in the middle.
            mask = (0..<(c.shape.batchCount * c.shape.keyCount)).map { index in
                let (b, j) = (index / c.shape.keyCount, index % c.shape.keyCount)
                return (j < c.shape.keyCount - 7 * b && !(b == 2 && j == 3)) ? 1 : 0
            }
        }
        return (q, k, v, mask)
    }

    /// The fused kernel and the score-matrix form (GEMM, masked softmax, GEMM) on every mode.
    @Test(arguments: cases, [false, true])
    func forwardMatchesReference(c: Case, materialized: Bool) {
        let (q, k, v, mask) = Self.inputs(c, seed: materialized ? 12 : 11)
        var out = [Float](repeating: .nan, count: c.shape.outputExtent)
        var lse = [Float](repeating: .nan, count: c.shape.rowCount)
        let forward = materialized ? Attention.forwardMaterialized : Attention.forward
        forward(c.shape, c.scale, c.masking, mask?.buffer, q.buffer, k.buffer, v.buffer, out.mutableBuffer, lse.mutableBuffer, .shared)
        let expected = Reference.attention(shape: c.shape, scale: c.scale, masking: c.masking, keyMask: mask,
                                           query: q, key: k, value: v)
        #expect(maxError(out, expected.output) <= 2e-5)
        #expect(maxError(lse, expected.logSumExp) <= 2e-5)
    }

    @Test(arguments: cases.filter { $0.shape.keyCount <= 70 || $0.name.hasPrefix("sagan 49") })
    func backwardMatchesReference(c: Case) {
        let (q, k, v, mask) = Self.inputs(c, seed: 12)
        var rng = SeededGenerator(seed: 13)
        let dO = rng.floats(c.shape.outputExtent)
        var out = [Float](repeating: 0, count: c.shape.outputExtent)
        var lse = [Float](repeating: 0, count: c.shape.rowCount)
        Attention.forward(shape: c.shape, scale: c.scale, masking: c.masking, keyMask: mask?.buffer, query: q.buffer,
                          key: k.buffer, value: v.buffer, output: out.mutableBuffer, logSumExp: lse.mutableBuffer)
        var dQ = [Float](repeating: .nan, count: q.count), dK = [Float](repeating: .nan, count: k.count)
        var dV = [Float](repeating: .nan, count: v.count)
        Attention.backward(shape: c.shape, scale: c.scale, masking: c.masking, keyMask: mask?.buffer,
                           query: q.buffer, key: k.buffer, value: v.buffer, output: out.buffer, logSumExp: lse.buffer,
                           outputGradient: dO.buffer, queryGradient: dQ.mutableBuffer, keyGradient: dK.mutableBuffer,
                           valueGradient: dV.mutableBuffer)
        let expected = Reference.attentionBackward(shape: c.shape, scale: c.scale, masking: c.masking, keyMask: mask,
                                                   query: q, key: k, value: v, outputGradient: dO)
        #expect(maxError(Array(dQ.prefix(c.shape.queryExtent)), expected.query) <= 1e-4)
        #expect(maxError(Array(dK.prefix(c.shape.keyExtent)), expected.key) <= 1e-4)
        #expect(maxError(Array(dV.prefix(c.shape.valueExtent)), expected.value) <= 1e-4)
        // The GEMM-based backward, from the same forward.
        (dQ, dK, dV) = ([Float](repeating: .nan, count: q.count), [Float](repeating: .nan, count: k.count), [Float](repeating: .nan, count: v.count))
        Attention.backwardMaterialized(shape: c.shape, scale: c.scale, masking: c.masking, keyMask: mask?.buffer,
                                       query: q.buffer, key: k.buffer, value: v.buffer, output: out.buffer, logSumExp: lse.buffer,
                                       outputGradient: dO.buffer, queryGradient: dQ.mutableBuffer, keyGradient: dK.mutableBuffer,
                                       valueGradient: dV.mutableBuffer)
        #expect(maxError(Array(dQ.prefix(c.shape.queryExtent)), expected.query) <= 1e-4)
        #expect(maxError(Array(dK.prefix(c.shape.keyExtent)), expected.key) <= 1e-4)
        #expect(maxError(Array(dV.prefix(c.shape.valueExtent)), expected.value) <= 1e-4)
    }

    /// L = Σ O ⊙ G: the kernel's backward (dO = G) against central differences of the kernel's forward.
    @Test func backwardMatchesFiniteDifferences() {
        let shape = AttentionShape(batchCount: 2, queryCount: 6, keyCount: 6, headCount: 4, kvHeadCount: 2,
                                   headDimension: 8, valueDimension: 5)
        for masking in [AttentionMasking.causal(queryOffset: 0), .bidirectional] {
            var rng = SeededGenerator(seed: 21)
            var q = rng.floats(shape.queryExtent), k = rng.floats(shape.keyExtent), v = rng.floats(shape.valueExtent)
            let g = rng.floats(shape.outputExtent)
            func loss() -> Double {
                var out = [Float](repeating: 0, count: shape.outputExtent)
                Attention.forward(shape: shape, scale: 0.7, masking: masking, query: q.buffer, key: k.buffer,
                                  value: v.buffer, output: out.mutableBuffer)
                return zip(out, g).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            var out = [Float](repeating: 0, count: shape.outputExtent), lse = [Float](repeating: 0, count: shape.rowCount)
            Attention.forward(shape: shape, scale: 0.7, masking: masking, query: q.buffer, key: k.buffer, value: v.buffer,
                              output: out.mutableBuffer, logSumExp: lse.mutableBuffer)
            var dQ = q, dK = k, dV = v
            Attention.backward(shape: shape, scale: 0.7, masking: masking, query: q.buffer, key: k.buffer, value: v.buffer,
                               output: out.buffer, logSumExp: lse.buffer, outputGradient: g.buffer,
                               queryGradient: dQ.mutableBuffer, keyGradient: dK.mutableBuffer, valueGradient: dV.mutableBuffer)
            let epsilon: Float = 1e-2
            // which: 0 perturbs q, 1 k, 2 v (closures, not inout, since loss() reads all three).
            func perturb(_ which: Int, _ i: Int, _ delta: Float) {
                switch which {
                case 0: q[i] += delta
                case 1: k[i] += delta
                default: v[i] += delta
                }
            }
            for (which, analytic, name) in [(0, dQ, "dQ"), (1, dK, "dK"), (2, dV, "dV")] {
                for i in stride(from: 0, to: analytic.count, by: 7) {
                    perturb(which, i, epsilon)
                    let plus = loss()
                    perturb(which, i, -2 * epsilon)
                    let minus = loss()
                    perturb(which, i, epsilon)
                    let numeric = Float((plus - minus) / Double(2 * epsilon))
                    #expect(abs(numeric - analytic[i]) <= 2e-3 * max(1, abs(numeric)), "\(name)[\(i)] \(masking)")
                }
            }
        }
    }

    @Test func twoKeysByHand() {
        // q·k = (0, ln 3) → softmax (1/4, 3/4); output = ¼·v0 + ¾·v1.
        let shape = AttentionShape(queryCount: 1, keyCount: 2, headCount: 1, headDimension: 1, valueDimension: 2)
        var out = [Float](repeating: 0, count: 2)
        let q: [Float] = [1], k: [Float] = [0, Float(log(3.0))], v: [Float] = [4, 0, 0, 8]
        Attention.forward(shape: shape, scale: 1, query: q.buffer, key: k.buffer, value: v.buffer, output: out.mutableBuffer)
        #expect(maxError(out, [1, 6]) <= 1e-6, "\(out)")
    }

    @Test func backwardOfFullyMaskedAndEmptyCalls() {
        // Every key hidden: no gradient flows anywhere.
        let shape = AttentionShape(queryCount: 3, keyCount: 5, headCount: 2, headDimension: 4, valueDimension: 20)
        var rng = SeededGenerator(seed: 4)
        let q = rng.floats(shape.queryExtent), k = rng.floats(shape.keyExtent), v = rng.floats(shape.valueExtent)
        let dO = rng.floats(shape.outputExtent), mask = [UInt8](repeating: 0, count: 5)
        var o = [Float](repeating: 0, count: shape.outputExtent), lse = [Float](repeating: 0, count: shape.rowCount)
        Attention.forward(shape: shape, scale: 1, keyMask: mask.buffer, query: q.buffer, key: k.buffer, value: v.buffer,
                          output: o.mutableBuffer, logSumExp: lse.mutableBuffer)
        var dQ = q, dK = k, dV = v
        Attention.backward(shape: shape, scale: 1, keyMask: mask.buffer, query: q.buffer, key: k.buffer, value: v.buffer,
                           output: o.buffer, logSumExp: lse.buffer, outputGradient: dO.buffer, queryGradient: dQ.mutableBuffer,
                           keyGradient: dK.mutableBuffer, valueGradient: dV.mutableBuffer)
        #expect(dQ.allSatisfy { $0 == 0 } && dK.allSatisfy { $0 == 0 } && dV.allSatisfy { $0 == 0 })
        // No queries at all: key and value gradients are zero, not left as they were.
        let empty = AttentionShape(queryCount: 0, keyCount: 5, headCount: 2, headDimension: 4, valueDimension: 20)
        let none: [Float] = []
        var noQ: [Float] = []
        dK = k
        dV = v
        Attention.backward(shape: empty, scale: 1, query: none.buffer, key: k.buffer, value: v.buffer, output: none.buffer,
                           logSumExp: none.buffer, outputGradient: none.buffer, queryGradient: noQ.mutableBuffer,
                           keyGradient: dK.mutableBuffer, valueGradient: dV.mutableBuffer)
        #expect(dK.allSatisfy { $0 == 0 } && dV.allSatisfy { $0 == 0 })
    }

    @Test func fullyMaskedRowIsZero() {
        let shape = AttentionShape(queryCount: 2, keyCount: 3, headCount: 1, headDimension: 4)
        var rng = SeededGenerator(seed: 3)
        let q = rng.floats(8), k = rng.floats(12), v = rng.floats(12)
        var out = [Float](repeating: .nan, count: 8), lse = [Float](repeating: 0, count: 2)
        let mask: [UInt8] = [0, 0, 0]
        Attention.forward(shape: shape, scale: 1, keyMask: mask.buffer, query: q.buffer, key: k.buffer,
                          value: v.buffer, output: out.mutableBuffer, logSumExp: lse.mutableBuffer)
        #expect(out == [Float](repeating: 0, count: 8))
        #expect(lse == [-.infinity, -.infinity])
    }

    /// The SAGAN block y = x + γ·softmax(qᵀk)·vᵀ with q, k, v from 1×1 convolutions, checked against
    /// PyTorch's float64 output (attention_golden.npz) within 1e-5 (float32 arithmetic).
    @Test(arguments: ["c7", "c14"]) func selfAttentionBlockMatchesGolden(tag: String) throws {
        let url = Fixtures.url("images/attention_golden.npz")
        guard FileManager.default.fileExists(atPath: url.path) else {
            Issue.record("missing fixture \(url.path)")
            return
        }
        let npz = try NPZArchive(contentsOf: url)
        let x = try #require(npz["\(tag)_x"]), y = try #require(npz["\(tag)_y"])
        let gamma = Float(try #require(npz["\(tag)_gamma"]).values[0])
        let (batch, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let n = h * w
        let reduced = try #require(npz["\(tag)_q_w"]).shape[0]
        func projection(_ name: String) throws -> (weight: [Float], bias: [Float]) {
            (try #require(npz["\(tag)_\(name)_w"]).values.map(Float.init), try #require(npz["\(tag)_\(name)_b"]).values.map(Float.init))
        }
        let (qw, qb) = try projection("q"), (kw, kb) = try projection("k"), (vw, vb) = try projection("v")
        let xs = x.values.map(Float.init)
        // 1×1 conv = per-position Linear; store position-major ([n][d]) as the kernel expects.
        func project(_ weight: [Float], _ bias: [Float], _ outChannels: Int) -> [Float] {
            var out = [Float](repeating: 0, count: batch * n * outChannels)
            for b in 0..<batch { for p in 0..<n { for o in 0..<outChannels {
                var s = bias[o]
                for c in 0..<channels { s += weight[o * channels + c] * xs[(b * channels + c) * n + p] }
                out[(b * n + p) * outChannels + o] = s
            } } }
            return out
        }
        let q = project(qw, qb, reduced), k = project(kw, kb, reduced), v = project(vw, vb, channels)
        let shape = AttentionShape(batchCount: batch, queryCount: n, keyCount: n, headCount: 1,
                                   headDimension: reduced, valueDimension: channels)
        var o = [Float](repeating: 0, count: shape.outputExtent)
        Attention.forward(shape: shape, scale: 1, query: q.buffer, key: k.buffer, value: v.buffer, output: o.mutableBuffer)
        var result = [Float](repeating: 0, count: xs.count)
        for b in 0..<batch { for c in 0..<channels { for p in 0..<n {
            result[(b * channels + c) * n + p] = xs[(b * channels + c) * n + p] + gamma * o[(b * n + p) * channels + c]
        } } }
        #expect(maxError(result, y.values.map(Float.init)) <= 1e-5)
    }
}

extension Double {
    var float: Float { Float(self) }
}

/// llama.cpp's f16 attention: equal to the last bit to a scalar walk through the same steps, and
/// within f16 rounding of the exact (Double) attention.
@Suite struct HalfPrecisionAttentionTests {
    static let cases: [(String, AttentionShape, AttentionMasking)] = {
        var decode = AttentionShape(queryCount: 1, keyCount: 77, headCount: 9, kvHeadCount: 3, headDimension: 64)
        decode.keyPositionStride = 5 * 64
        decode.valuePositionStride = 5 * 64
        return [
            ("prefill 1", AttentionShape(queryCount: 1, keyCount: 1, headCount: 9, kvHeadCount: 3, headDimension: 64), .causal(queryOffset: 0)),
            ("prefill 37", AttentionShape(queryCount: 37, keyCount: 37, headCount: 9, kvHeadCount: 3, headDimension: 64), .causal(queryOffset: 0)),
            ("chunk after 130", AttentionShape(queryCount: 6, keyCount: 136, headCount: 4, kvHeadCount: 2, headDimension: 64), .causal(queryOffset: 130)),
            ("decode 77", decode, .causal(queryOffset: 76)),
            ("head dim 40", AttentionShape(queryCount: 5, keyCount: 70, headCount: 2, kvHeadCount: 1, headDimension: 40), .bidirectional),
            ("value dim 6", AttentionShape(batchCount: 2, queryCount: 3, keyCount: 20, headCount: 1, headDimension: 16, valueDimension: 6), .bidirectional),
            // Windows that start mid-chunk, on a chunk edge, past a 64-key accumulator, and wider than the keys.
            ("window 7 prefill 40", AttentionShape(queryCount: 40, keyCount: 40, headCount: 4, kvHeadCount: 1, headDimension: 64), .slidingWindow(queryOffset: 0, window: 7)),
            ("window 16 chunk after 130", AttentionShape(queryCount: 6, keyCount: 136, headCount: 4, kvHeadCount: 2, headDimension: 64), .slidingWindow(queryOffset: 130, window: 16)),
            ("window 70 decode 150", AttentionShape(queryCount: 1, keyCount: 150, headCount: 2, kvHeadCount: 1, headDimension: 32), .slidingWindow(queryOffset: 149, window: 70)),
            ("window 1", AttentionShape(queryCount: 5, keyCount: 21, headCount: 2, kvHeadCount: 2, headDimension: 16), .slidingWindow(queryOffset: 16, window: 1)),
            ("window beyond keys", AttentionShape(queryCount: 9, keyCount: 9, headCount: 2, kvHeadCount: 1, headDimension: 16, valueDimension: 6), .slidingWindow(queryOffset: 0, window: 500)),
        ]
    }()

    @Test(arguments: [HalfPrecisionSummation.batch, .single], 0..<11)
    func matchesScalarStepsAndExactAttention(summation: HalfPrecisionSummation, index: Int) {
        let (_, shape, masking) = Self.cases[index]
        var rng = SeededGenerator(seed: 90 &+ UInt64(index))
        let q = rng.floats(shape.queryExtent, in: -3...3)
        // The cache holds f16 values.
        let k = rng.floats(shape.keyExtent, in: -3...3).map { Float(Float16($0)) }
        let v = rng.floats(shape.valueExtent).map { Float(Float16($0)) }
        let scale = 1 / Float(shape.headDimension).squareRoot()
        var out = [Float](repeating: .nan, count: shape.outputExtent)
        Attention.forwardHalfPrecision(shape: shape, scale: scale, masking: masking, summation: summation,
                                       query: q.buffer, key: k.buffer, value: v.buffer, output: out.mutableBuffer)
        let steps = Reference.halfPrecisionAttention(shape: shape, scale: scale, masking: masking, summation: summation,
                                                     query: q, key: k, value: v)
        let differing = (0..<out.count).filter { out[$0].bitPattern != steps[$0].bitPattern && !(out[$0] == 0 && steps[$0] == 0) }
        #expect(differing.isEmpty, "\(differing.count) outputs differ from the scalar steps, first at \(differing.first ?? -1)")
        let exact = Reference.attention(shape: shape, scale: scale, masking: masking, keyMask: nil, query: q, key: k, value: v).output
        // f16 queries and probabilities: a few parts in a thousand.
        #expect(maxError(out, exact) <= 5e-3)
    }

    /// Gemma 2's soft-capped scores (c·tanh(s/c)) against the scalar steps, with a window; and the
    /// cap changes the result (scores of ±3·√64 are far from linear in tanh at c = 5).
    @Test(arguments: [HalfPrecisionSummation.batch, .single])
    func softCappedScoresMatchScalarSteps(summation: HalfPrecisionSummation) {
        let shape = AttentionShape(queryCount: 12, keyCount: 90, headCount: 4, kvHeadCount: 2, headDimension: 64)
        let masking = AttentionMasking.slidingWindow(queryOffset: 78, window: 33)
        var rng = SeededGenerator(seed: 41)
        let q = rng.floats(shape.queryExtent, in: -3...3)
        let k = rng.floats(shape.keyExtent, in: -3...3).map { Float(Float16($0)) }
        let v = rng.floats(shape.valueExtent).map { Float(Float16($0)) }
        func run(_ softCap: Float?) -> [Float] {
            var out = [Float](repeating: .nan, count: shape.outputExtent)
            Attention.forwardHalfPrecision(shape: shape, scale: 1, softCap: softCap, masking: masking, summation: summation,
                                           query: q.buffer, key: k.buffer, value: v.buffer, output: out.mutableBuffer)
            return out
        }
        let capped = run(5)
        let steps = Reference.halfPrecisionAttention(shape: shape, scale: 1, softCap: 5, masking: masking, summation: summation,
                                                     query: q, key: k, value: v)
        #expect(capped.map(\.bitPattern) == steps.map(\.bitPattern))
        #expect(maxError(capped, run(nil)) > 1e-2)
    }

    /// The two orders really differ somewhere (else a test of either would prove nothing).
    @Test func summationOrdersDiffer() {
        let shape = AttentionShape(queryCount: 40, keyCount: 40, headCount: 2, kvHeadCount: 1, headDimension: 64)
        var rng = SeededGenerator(seed: 7)
        let q = rng.floats(shape.queryExtent, in: -3...3)
        let k = rng.floats(shape.keyExtent, in: -3...3).map { Float(Float16($0)) }
        let v = rng.floats(shape.valueExtent).map { Float(Float16($0)) }
        func run(_ summation: HalfPrecisionSummation) -> [Float] {
            var out = [Float](repeating: 0, count: shape.outputExtent)
            Attention.forwardHalfPrecision(shape: shape, scale: 0.125, masking: .causal(queryOffset: 0), summation: summation,
                                           query: q.buffer, key: k.buffer, value: v.buffer, output: out.mutableBuffer)
            return out
        }
        #expect(run(.batch) != run(.single))
    }
}
