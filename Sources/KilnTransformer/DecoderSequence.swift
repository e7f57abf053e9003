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
    private let keyCache, valueCache: UnsafeMutableBufferPointer<Float>  // [layer][context][kvSize]
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
        keyCache = buffer(c.layerCount * self.contextSize * c.kvSize)
        valueCache = buffer(c.layerCount * self.contextSize * c.kvSize)
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
                  cosines, sines, keyCache, valueCache, logits] {
            b.deallocate()
        }
    }

    /// Runs `tokens` at positions start..<start+count (earlier positions must already be in the
    /// cache) and leaves the last token's logits in `logits`.
    public func forward(_ tokens: [Int], startPosition: Int) throws {
        let c = configuration
        guard startPosition >= 0, startPosition + tokens.count <= contextSize else {
            throw LanguageModelFailure.contextFull(needed: startPosition + tokens.count, available: contextSize)
        }
        if let bad = tokens.first(where: { !(0..<c.vocabularySize).contains($0) }) { throw LanguageModelFailure.tokenOutOfRange(bad) }
        // llama.cpp sums attention products in one order for a multi-token call and another for a
        // single token; following it keeps Kiln's tokens identical to llama.cpp's.
        let summation: HalfPrecisionSummation = tokens.count > 1 ? .batch : .single
        var done = 0
        while done < tokens.count {
            let chunk = tokens[done..<min(tokens.count, done + batchSize)]
            runBatch(chunk, at: startPosition + done, summation: summation)
            done += chunk.count
        }
        // Final norm and the output head for the last token only.
        let last = UnsafeBufferPointer(rebasing: x[((lastBatchCount - 1) * c.hiddenSize)..<(lastBatchCount * c.hiddenSize)])
        let n = UnsafeMutableBufferPointer(rebasing: normed[0..<c.hiddenSize])
        VectorOps.rmsNorm(last, weight: weights.outputNorm, epsilon: c.rmsNormEpsilon, into: n, count: c.hiddenSize)
        lastActivation.quantize(UnsafeBufferPointer(n), rows: 1)
        let outputHead = weights.outputHead
        QuantizedOps.matmul(outputHead.type, weights: outputHead.weights, rows: outputHead.rows, activations: lastActivation,
                            output: logits, pool: pool)
        if let cap = c.finalLogitSoftCap { VectorOps.softCap(UnsafeBufferPointer(logits), cap: cap, into: logits, count: logits.count) }
    }

    private var lastBatchCount = 1

    private func runBatch(_ tokens: ArraySlice<Int>, at position: Int, summation: HalfPrecisionSummation) {
        let c = configuration, a = c.architecture
        let count = tokens.count
        lastBatchCount = count
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
                VectorOps.ropeAngles(position: position + t, rotaryDimension: c.rotaryDimension, base: c.ropeTheta(layer: l),
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
                let slot = cacheBase + (position + t) * kv
                VectorOps.roundToHalf(UnsafeBufferPointer(rebasing: keys[(t * kv)...]),
                                      into: UnsafeMutableBufferPointer(rebasing: keyCache[slot...]), count: kv)
                VectorOps.roundToHalf(UnsafeBufferPointer(rebasing: values[(t * kv)...]),
                                      into: UnsafeMutableBufferPointer(rebasing: valueCache[slot...]), count: kv)
            }
            var shape = AttentionShape(queryCount: count, keyCount: position + count, headCount: c.headCount,
                                       kvHeadCount: c.kvHeadCount, headDimension: c.headDimension)
            shape.keyBatchStride = contextSize * kv
            shape.valueBatchStride = contextSize * kv
            let cacheKeys = UnsafeBufferPointer(rebasing: keyCache[cacheBase..<(cacheBase + contextSize * kv)])
            let cacheValues = UnsafeBufferPointer(rebasing: valueCache[cacheBase..<(cacheBase + contextSize * kv)])
            let masking: AttentionMasking = c.layerWindows[l].map { .slidingWindow(queryOffset: position, window: $0) }
                ?? .causal(queryOffset: position)
            Attention.forwardHalfPrecision(shape: shape, scale: scoreScale, softCap: c.attentionSoftCap,
                                           masking: masking, summation: summation,
                                           query: UnsafeBufferPointer(queries), key: cacheKeys, value: cacheValues,
                                           output: attention, pool: pool)
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
