import KilnFormats
import KilnKernels

/// One sequence running through a decoder: its KV cache, scratch buffers and logits, over
/// `DecoderWeights` that any number of sequences may share. Every buffer is allocated once, so
/// decoding a token allocates nothing.
///
/// Per layer: x += Wo·attention(rope(Wq·n + bq), rope(Wk·n + bk), Wv·n + bv) with
/// n = rmsNorm(x)·attn_norm (the biases where the file has them; each query and key head
/// RMS-normalized first where the architecture says so; RoPE pairs as it says),
/// then x += Wdown·(silu(Wgate·m) ⊙ Wup·m) with m = rmsNorm(x)·ffn_norm. K and V are stored
/// rounded to f16, as llama.cpp's default cache keeps them, and every kernel follows llama.cpp's
/// CPU arithmetic step for step, so greedy decoding reproduces llama.cpp's tokens.
public final class DecoderSequence: LanguageModel, @unchecked Sendable {
    public let weights: DecoderWeights
    public var configuration: DecoderConfiguration { weights.configuration }
    public var file: GGUFFile { weights.file }
    public var vocabularySize: Int { weights.configuration.vocabularySize }
    /// Tokens the prefill processes per batch.
    public let batchSize: Int
    /// Positions the KV cache holds.
    public let contextSize: Int

    private var layers: [DecoderWeights.Layer] { weights.layers }
    /// Per layer, the products that share an input, built once so a token allocates nothing.
    private var queryKeyValue: [[QuantizedMatrix]] = []
    private var gateUp: [[QuantizedMatrix]] = []

    // Scratch, [batchSize][width] unless noted.
    private let x, normed, queries, keys, values, attention, projected, gate, up: UnsafeMutableBufferPointer<Float>
    /// The products of fused matrices before they are split: [batchSize][q + 2·kv] and [batchSize][2·ffn].
    private let fusedQueryKeyValue, fusedGateUp: UnsafeMutableBufferPointer<Float>
    private let cosines, sines: UnsafeMutableBufferPointer<Float>  // [rotaryDimension / 2]
    /// This sequence's own keys and values; `forward(_:startPosition:into:)` and `step` run others.
    public let cache: KVCache
    /// Logits of the last token of the last `forward` call: [vocabularySize].
    public let logits: UnsafeMutableBufferPointer<Float>
    private let hiddenActivations: QuantizedActivations
    /// The attention output's, which is heads × head dimension wide (the hidden size for most).
    private let attentionActivations: QuantizedActivations
    private let intermediateActivations: QuantizedActivations
    private let lastActivation: QuantizedActivations
    private let pool: ThreadPool

    /// `batchSize` tokens run through each matrix product at once. The default is llama.cpp's
    /// n_batch (512): its kernels group a batch's tokens (in fours for repacked weights, from eight
    /// for the tiled K-quant kernel), so the same batching gives the same bits.
    public init(weights: DecoderWeights, contextSize: Int? = nil, batchSize: Int = 512, pool: ThreadPool = .shared) {
        let c = weights.configuration
        self.weights = weights
        self.pool = pool
        self.batchSize = max(1, batchSize)
        self.contextSize = min(c.contextLength, max(1, contextSize ?? 2048))
        let layers = weights.layers, outputHead = weights.outputHead

        func buffer(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            b.initialize(repeating: 0)
            return b
        }
        let b = self.batchSize
        x = buffer(b * c.hiddenSize)
        normed = buffer(b * c.hiddenSize)
        queries = buffer(b * c.querySize)
        keys = buffer(b * c.kvSize)
        values = buffer(b * c.kvSize)
        attention = buffer(b * c.querySize)
        projected = buffer(b * c.hiddenSize)
        gate = buffer(b * c.intermediateSize)
        up = buffer(b * c.intermediateSize)
        let fusesQKV = layers.contains { if case .fused = $0.queryKeyValue { true } else { false } }
        let fusesGateUp = layers.contains { if case .fused = $0.gateUp { true } else { false } }
        fusedQueryKeyValue = buffer(fusesQKV ? b * (c.querySize + 2 * c.kvSize) : 1)
        fusedGateUp = buffer(fusesGateUp ? b * 2 * c.intermediateSize : 1)
        cosines = buffer(c.rotaryDimension / 2)
        sines = buffer(c.rotaryDimension / 2)
        cache = KVCache(layerCount: c.layerCount, contextSize: self.contextSize, kvSize: c.kvSize)
        logits = buffer(c.vocabularySize)
        // q8_K super-blocks and f16/bf16 rows only where a projection reads them (each costs per token).
        let hiddenReaders = layers.flatMap { $0.projections }.map(\.type)
        hiddenActivations = QuantizedActivations(columns: c.hiddenSize, rows: b, types: hiddenReaders)
        attentionActivations = c.querySize == c.hiddenSize
            ? hiddenActivations : QuantizedActivations(columns: c.querySize, rows: b, types: layers.map(\.output.type))
        intermediateActivations = QuantizedActivations(columns: c.intermediateSize, rows: b, types: layers.map(\.down.type))
        lastActivation = QuantizedActivations(columns: c.hiddenSize, rows: 1, types: [outputHead.type])
        for layer in layers {
            switch layer.queryKeyValue {
            case .separate(let q, let k, let v):
                queryKeyValue.append([project(q, queries, c.querySize), project(k, keys, c.kvSize), project(v, values, c.kvSize)])
            case .fused(let p):
                queryKeyValue.append([project(p, fusedQueryKeyValue, p.rows)])
            }
            switch layer.gateUp {
            case .separate(let g, let u):
                gateUp.append([project(g, gate, c.intermediateSize), project(u, up, c.intermediateSize)])
            case .fused(let p):
                gateUp.append([project(p, fusedGateUp, p.rows)])
            }
        }
    }

    /// A sequence over weights of its own, loaded from `file`.
    public convenience init(file: GGUFFile, contextSize: Int? = nil, batchSize: Int = 512, pool: ThreadPool = .shared) throws {
        self.init(weights: try DecoderWeights(file: file), contextSize: contextSize, batchSize: batchSize, pool: pool)
    }

    deinit {
        for b in [x, normed, queries, keys, values, attention, projected, gate, up, fusedQueryKeyValue, fusedGateUp,
                  cosines, sines, logits] + (stepLogits.map { [$0] } ?? []) {
            b.deallocate()
        }
    }

    /// An empty cache for another sequence over the same weights and scratch.
    public func makeCache() -> KVCache {
        KVCache(layerCount: configuration.layerCount, contextSize: contextSize, kvSize: configuration.kvSize)
    }

    /// Runs `tokens` at positions start..<start+count (earlier positions must already be in the
    /// cache) and leaves the last token's logits in `logits`.
    public func forward(_ tokens: [Int], startPosition: Int) throws {
        try forward(tokens, startPosition: startPosition, into: cache)
    }

    /// `forward` with the keys and values in `cache` (one of `makeCache()`'s). A prompt fed in
    /// chunks (each a multiple of `batchSize` but the last) gives the bits it gives whole when
    /// every chunk names the prompt's length as `runLength`.
    public func forward(_ tokens: [Int], startPosition: Int, into cache: KVCache, runLength: Int? = nil) throws {
        let c = configuration
        precondition(cache.contextSize == contextSize && cache.layerCount == c.layerCount, "a cache of another shape")
        guard startPosition >= 0, startPosition + tokens.count <= contextSize else {
            throw LanguageModelFailure.contextFull(needed: startPosition + tokens.count, available: contextSize)
        }
        if let bad = tokens.first(where: { !(0..<c.vocabularySize).contains($0) }) { throw LanguageModelFailure.tokenOutOfRange(bad) }
        // llama.cpp sums attention products in one order for a multi-token call and another for a
        // single token; following it keeps Kiln's tokens identical to llama.cpp's.
        let summation: HalfPrecisionSummation = (runLength ?? tokens.count) > 1 ? .batch : .single
        var done = 0
        while done < tokens.count {
            let chunk = tokens[done..<min(tokens.count, done + batchSize)]
            runBatch(chunk, rows: .run(cache, start: startPosition + done, summation: summation))
            done += chunk.count
        }
        // Final norm and the output head for the last token only.
        guard !tokens.isEmpty else { return }
        let lastRow = (tokens.count - 1) % batchSize  // in the last batch's scratch
        outputHead(rows: lastRow..<(lastRow + 1), activations: lastActivation, into: logits)
    }

    /// One token for each of several sequences (each its own cache and position) through one
    /// pass over the weights: every weight matrix is read once for all of them. Returns their
    /// logits, [entries.count][vocabularySize], valid until the next call. Each sequence's
    /// products and attention are computed as a lone sequence's decoding step computes them,
    /// so in a step of at most `exactStepSize` sequences every sequence gets exactly the logits
    /// it would get alone.
    public func step(_ entries: [DecoderStepEntry]) throws -> UnsafeMutableBufferPointer<Float> {
        let c = configuration
        guard !entries.isEmpty else { return UnsafeMutableBufferPointer(start: nil, count: 0) }
        precondition(entries.count <= batchSize, "a step of \(entries.count) sequences exceeds the batch size \(batchSize)")
        for entry in entries {
            precondition(entry.cache.contextSize == contextSize && entry.cache.layerCount == c.layerCount, "a cache of another shape")
            guard entry.position >= 0, entry.position < contextSize else {
                throw LanguageModelFailure.contextFull(needed: entry.position + 1, available: contextSize)
            }
            guard (0..<c.vocabularySize).contains(entry.token) else { throw LanguageModelFailure.tokenOutOfRange(entry.token) }
        }
        runBatch(entries.map(\.token)[...], rows: .step(entries))
        if stepCapacity < entries.count {
            stepLogits?.deallocate()
            stepLogits = .allocate(capacity: entries.count * c.vocabularySize)
            stepActivation = QuantizedActivations(columns: c.hiddenSize, rows: entries.count, types: [weights.outputHead.type])
            stepCapacity = entries.count
        }
        let out = UnsafeMutableBufferPointer(rebasing: stepLogits![0..<(entries.count * c.vocabularySize)])
        outputHead(rows: 0..<entries.count, activations: stepActivation!, into: out)
        return out
    }

    /// The most sequences a `step` may hold and still decode each exactly as it decodes alone:
    /// the smallest `exactBatchTokens` of the weights' types.
    public var exactStepSize: Int {
        (weights.layers.flatMap(\.projections).map(\.type) + [weights.outputHead.type]).map(\.exactBatchTokens).min() ?? 1
    }

    /// Whether a prompt split anywhere gives the bits it gives whole (every type keeps its bits
    /// in any batch), so a cache's prefix can be reused exactly.
    public var splitPromptsKeepTheirBits: Bool { exactStepSize == Int.max }

    private var stepLogits: UnsafeMutableBufferPointer<Float>?
    private var stepActivation: QuantizedActivations?
    private var stepCapacity = 0

    /// Final norm and output head of the scratch rows `rows` into `out`, one vocabulary-wide row
    /// of logits each.
    private func outputHead(rows: Range<Int>, activations: QuantizedActivations, into out: UnsafeMutableBufferPointer<Float>) {
        let c = configuration, h = c.hiddenSize
        for (i, t) in rows.enumerated() {
            let source = UnsafeBufferPointer(rebasing: x[(t * h)..<((t + 1) * h)])
            let n = UnsafeMutableBufferPointer(rebasing: normed[(i * h)..<((i + 1) * h)])
            VectorOps.rmsNorm(source, weight: weights.outputNorm, epsilon: c.rmsNormEpsilon, into: n, count: h)
        }
        activations.quantize(UnsafeBufferPointer(rebasing: normed[0..<(rows.count * h)]), rows: rows.count)
        let head = weights.outputHead
        QuantizedOps.matmul(head.type, weights: head.weights, rows: head.rows, activations: activations, output: out,
                            outputStride: c.vocabularySize, pool: pool)
        if let cap = c.finalLogitSoftCap { VectorOps.softCap(UnsafeBufferPointer(out), cap: cap, into: out, count: rows.count * c.vocabularySize) }
    }

    /// Where a batch's rows go: consecutive positions of one cache (a prompt), or one token each
    /// of several sequences (a decoding step).
    private enum Rows {
        case run(KVCache, start: Int, summation: HalfPrecisionSummation)
        case step([DecoderStepEntry])

        func cache(_ t: Int) -> KVCache {
            switch self {
            case .run(let cache, _, _): return cache
            case .step(let entries): return entries[t].cache
            }
        }

        func position(_ t: Int) -> Int {
            switch self {
            case .run(_, let start, _): return start + t
            case .step(let entries): return entries[t].position
            }
        }
    }

    private func runBatch(_ tokens: ArraySlice<Int>, rows: Rows) {
        let c = configuration, a = c.architecture
        let count = tokens.count
        let h = c.hiddenSize, qs = c.querySize, kv = c.kvSize, f = c.intermediateSize, d = c.headDimension
        let embedding = weights.embedding
        let embeddingRow = embedding.type.rowBytes(columns: h)
        for (t, token) in zip(0..., tokens) {
            QuantizedOps.dequantize(embedding.type, blocks: UnsafeRawBufferPointer(rebasing: embedding.weights[(token * embeddingRow)...]),
                                    count: h, into: UnsafeMutableBufferPointer(rebasing: x[(t * h)...]))
        }
        if a.scalesEmbeddings {
            VectorOps.scale(UnsafeBufferPointer(x), by: Float(h).squareRoot(), into: x, count: count * h)
        }
        // Queries scaled in f32 before the product, or the scores inside it.
        let scoreScale: Float = a.scalesQueriesFirst ? 1 : c.attentionScale
        for (l, layer) in layers.enumerated() {
            // Attention block.
            normRows(count, layer.attentionNorm)
            hiddenActivations.quantize(UnsafeBufferPointer(normed), rows: count)
            QuantizedOps.matmul(group: queryKeyValue[l], activations: hiddenActivations, pool: pool)
            if case .fused = layer.queryKeyValue {
                split(fusedQueryKeyValue, count: count, into: [(queries, qs), (keys, kv), (values, kv)])
            }
            addBias(layer.queryBias, to: queries, width: qs, count: count)
            addBias(layer.keyBias, to: keys, width: kv, count: count)
            addBias(layer.valueBias, to: values, width: kv, count: count)
            let cacheBase = l * contextSize * kv
            for t in 0..<count {
                let position = rows.position(t), cache = rows.cache(t)
                VectorOps.ropeAngles(position: position, rotaryDimension: c.rotaryDimension, base: c.ropeTheta(layer: l),
                                     cos: cosines, sin: sines, frequencyFactors: weights.ropeFrequencyFactors)
                let q = UnsafeMutableBufferPointer(rebasing: queries[(t * qs)..<((t + 1) * qs)])
                let k = UnsafeMutableBufferPointer(rebasing: keys[(t * kv)..<((t + 1) * kv)])
                if let queryNorm = layer.queryNorm, let keyNorm = layer.keyNorm {
                    for head in 0..<c.headCount { normHead(q, head, d, queryNorm) }
                    for head in 0..<c.kvHeadCount { normHead(k, head, d, keyNorm) }
                }
                VectorOps.applyRoPE(q, headCount: c.headCount, headDimension: c.headDimension, rotaryDimension: c.rotaryDimension,
                                    cos: UnsafeBufferPointer(cosines), sin: UnsafeBufferPointer(sines), pairing: a.ropePairing)
                VectorOps.applyRoPE(k, headCount: c.kvHeadCount, headDimension: c.headDimension, rotaryDimension: c.rotaryDimension,
                                    cos: UnsafeBufferPointer(cosines), sin: UnsafeBufferPointer(sines), pairing: a.ropePairing)
                if a.scalesQueriesFirst { VectorOps.scale(UnsafeBufferPointer(q), by: c.attentionScale, into: q, count: qs) }
                let slot = cacheBase + position * kv
                VectorOps.roundToHalf(UnsafeBufferPointer(rebasing: keys[(t * kv)...]),
                                      into: UnsafeMutableBufferPointer(rebasing: cache.keys[slot...]), count: kv)
                VectorOps.roundToHalf(UnsafeBufferPointer(rebasing: values[(t * kv)...]),
                                      into: UnsafeMutableBufferPointer(rebasing: cache.values[slot...]), count: kv)
            }
            // A prompt's queries attend in one call; a step's, each to its own sequence's cache.
            func attend(_ cache: KVCache, queries first: Int, count queryCount: Int, at position: Int, _ summation: HalfPrecisionSummation) {
                var shape = AttentionShape(queryCount: queryCount, keyCount: position + queryCount, headCount: c.headCount,
                                           kvHeadCount: c.kvHeadCount, headDimension: c.headDimension)
                shape.keyBatchStride = contextSize * kv
                shape.valueBatchStride = contextSize * kv
                let cacheKeys = UnsafeBufferPointer(rebasing: cache.keys[cacheBase..<(cacheBase + contextSize * kv)])
                let cacheValues = UnsafeBufferPointer(rebasing: cache.values[cacheBase..<(cacheBase + contextSize * kv)])
                let masking: AttentionMasking = c.layerWindows[l].map { .slidingWindow(queryOffset: position, window: $0) }
                    ?? .causal(queryOffset: position)
                Attention.forwardHalfPrecision(shape: shape, scale: scoreScale, softCap: c.attentionSoftCap,
                                               masking: masking, summation: summation,
                                               query: UnsafeBufferPointer(rebasing: queries[(first * qs)..<((first + queryCount) * qs)]),
                                               key: cacheKeys, value: cacheValues,
                                               output: UnsafeMutableBufferPointer(rebasing: attention[(first * qs)..<((first + queryCount) * qs)]),
                                               pool: pool)
            }
            switch rows {
            case .run(let cache, let start, let summation):
                attend(cache, queries: 0, count: count, at: start, summation)
            case .step(let entries):
                for (t, entry) in entries.enumerated() { attend(entry.cache, queries: t, count: 1, at: entry.position, .single) }
            }
            attentionActivations.quantize(UnsafeBufferPointer(attention), rows: count)
            QuantizedOps.matmul(layer.output.type, weights: layer.output.weights, rows: h, activations: attentionActivations,
                                output: projected, pool: pool)
            addResidual(count, normalizedBy: layer.attentionOutputNorm)
            // Feed-forward block.
            normRows(count, layer.feedForwardNorm)
            hiddenActivations.quantize(UnsafeBufferPointer(normed), rows: count)
            QuantizedOps.matmul(group: gateUp[l], activations: hiddenActivations, pool: pool)
            if case .fused = layer.gateUp {
                split(fusedGateUp, count: count, into: [(gate, f), (up, f)])
            }
            switch a.activation {
            case .silu:
                VectorOps.swiglu(gate: UnsafeBufferPointer(gate), up: UnsafeBufferPointer(up), into: gate, count: count * f)
            case .geluTanh:
                VectorOps.gegluHalfTable(gate: UnsafeBufferPointer(gate), up: UnsafeBufferPointer(up), into: gate, count: count * f)
            }
            intermediateActivations.quantize(UnsafeBufferPointer(gate), rows: count)
            QuantizedOps.matmul(layer.down.type, weights: layer.down.weights, rows: h, activations: intermediateActivations,
                                output: projected, pool: pool)
            addResidual(count, normalizedBy: layer.feedForwardOutputNorm)
        }
    }

    /// x += projected, each row of projected RMS-normalized first where the block has an output norm.
    private func addResidual(_ count: Int, normalizedBy weight: UnsafeBufferPointer<Float>?) {
        let h = configuration.hiddenSize
        if let weight {
            for t in 0..<count {
                let row = UnsafeMutableBufferPointer(rebasing: projected[(t * h)..<((t + 1) * h)])
                VectorOps.rmsNorm(UnsafeBufferPointer(row), weight: weight, epsilon: configuration.rmsNormEpsilon, into: row, count: h)
            }
        }
        VectorOps.add(UnsafeBufferPointer(x), UnsafeBufferPointer(projected), into: x, count: count * h)
    }

    /// Copies each of `count` rows of a fused product into the parts' buffers, in order.
    private func split(_ fused: UnsafeMutableBufferPointer<Float>, count: Int,
                       into parts: [(UnsafeMutableBufferPointer<Float>, Int)]) {
        let width = parts.reduce(0) { $0 + $1.1 }
        for t in 0..<count {
            var offset = t * width
            for (part, w) in parts {
                _ = UnsafeMutableBufferPointer(rebasing: part[(t * w)..<((t + 1) * w)])
                    .update(fromContentsOf: UnsafeBufferPointer(rebasing: fused[offset..<(offset + w)]))
                offset += w
            }
        }
    }

    private func project(_ p: DecoderWeights.Projection, _ output: UnsafeMutableBufferPointer<Float>, _ stride: Int) -> QuantizedMatrix {
        QuantizedMatrix(type: p.type, weights: p.weights, rows: p.rows, output: output, outputStride: stride)
    }

    /// RMSNorm of head `head` (`width` values) of one token's row, in place.
    private func normHead(_ row: UnsafeMutableBufferPointer<Float>, _ head: Int, _ width: Int, _ weight: UnsafeBufferPointer<Float>) {
        let slice = UnsafeMutableBufferPointer(rebasing: row[(head * width)..<((head + 1) * width)])
        VectorOps.rmsNorm(UnsafeBufferPointer(slice), weight: weight, epsilon: configuration.rmsNormEpsilon, into: slice, count: width)
    }

    /// rows[t] += bias for the batch's `count` rows of `width`.
    private func addBias(_ bias: UnsafeBufferPointer<Float>?, to rows: UnsafeMutableBufferPointer<Float>, width: Int, count: Int) {
        guard let bias else { return }
        for t in 0..<count {
            let row = UnsafeMutableBufferPointer(rebasing: rows[(t * width)..<((t + 1) * width)])
            VectorOps.add(UnsafeBufferPointer(row), bias, into: row, count: width)
        }
    }

    private func normRows(_ count: Int, _ weight: UnsafeBufferPointer<Float>) {
        let h = configuration.hiddenSize
        for t in 0..<count {
            VectorOps.rmsNorm(UnsafeBufferPointer(rebasing: x[(t * h)..<((t + 1) * h)]), weight: weight,
                              epsilon: configuration.rmsNormEpsilon,
                              into: UnsafeMutableBufferPointer(rebasing: normed[(t * h)..<((t + 1) * h)]), count: h)
        }
    }
}

/// One sequence's token in a `DecoderSequence.step`: its cache and the token's position.
public struct DecoderStepEntry {
    public var cache: KVCache
    public var token: Int
    public var position: Int
    public init(cache: KVCache, token: Int, position: Int) { (self.cache, self.token, self.position) = (cache, token, position) }
}

/// The keys and values of one sequence's positions, rounded to f16 as llama.cpp's default
/// cache keeps them: [layer][context][kvSize] each.
public final class KVCache: @unchecked Sendable {  // used by one step at a time
    public let layerCount: Int
    public let contextSize: Int
    let keys, values: UnsafeMutableBufferPointer<Float>

    init(layerCount: Int, contextSize: Int, kvSize: Int) {
        self.layerCount = layerCount
        self.contextSize = contextSize
        keys = .allocate(capacity: layerCount * contextSize * kvSize)
        values = .allocate(capacity: layerCount * contextSize * kvSize)
        keys.initialize(repeating: 0)
        values.initialize(repeating: 0)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }
}
