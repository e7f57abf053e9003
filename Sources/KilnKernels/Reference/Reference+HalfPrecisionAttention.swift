import Glibc

extension Reference {
    /// `Attention.forwardHalfPrecision` one output at a time in scalar Swift, following llama.cpp's
    /// CPU steps literally: per score and per output element, the lanes of its accumulators
    /// (16 for a tinyBLAS FMA chain, 4 × 16 for `ggml_vec_dot_f16`) filled element by element,
    /// then combined as `_mm512_reduce_add_ps` combines them.
    public static func halfPrecisionAttention(
        shape: AttentionShape, scale: Float, softCap: Float? = nil, masking: AttentionMasking,
        summation: HalfPrecisionSummation, query: [Float], key: [Float], value: [Float]
    ) -> [Float] {
        var output = [Float](repeating: 0, count: shape.outputExtent)
        let hd = shape.headDimension, vd = shape.valueDimension
        for b in 0..<shape.batchCount {
            for h in 0..<shape.headCount {
                let kvh = h / shape.groupSize
                for i in 0..<shape.queryCount {
                    let qBase = b * shape.queryBatchStride + i * shape.queryPositionStride + h * hd
                    let q = (0..<hd).map { Float(Float16(query[qBase + $0])) }
                    let limit = masking.keyLimit(query: i, keyCount: shape.keyCount)
                    guard limit > 0 else { continue }
                    // As llama.cpp's mask: every key from 0 is scored, those outside the window at −∞.
                    let visible = masking.keyRange(query: i, keyCount: shape.keyCount)
                    var scores = (0..<limit).map { j -> Float in
                        guard visible.contains(j) else { return -.infinity }
                        let kBase = b * shape.keyBatchStride + j * shape.keyPositionStride + kvh * hd
                        var s = orderedDot(hd, summation: summation) { q[$0] * key[kBase + $0] }
                        if let softCap { s = tanhf(s * (1 / softCap)) * softCap }
                        return s * scale
                    }
                    let maximum = scores.max()!
                    let padded = (limit + 15) / 16 * 16
                    var exps = [Float](repeating: 0, count: padded)
                    for j in visible { exps[j] = expScalar(scores[j] - maximum) }
                    var sum = 0.0
                    for chunk in stride(from: 0, to: padded, by: 16) { sum += Double(reduceAdd16(Array(exps[chunk..<(chunk + 16)]))) }
                    let inverse = Float(1.0 / sum)
                    scores = (0..<limit).map { Float(Float16(exps[$0] * inverse)) }
                    let keys = (limit + 63) / 64 * 64  // llama.cpp's padded window, zero probability beyond `limit`
                    let p = scores + [Float](repeating: 0, count: keys - limit)
                    for d in 0..<vd {
                        let vBase = b * shape.valueBatchStride + kvh * vd + d
                        let o = orderedDot(keys, summation: summation, outputs: vd) { j in
                            j < limit ? p[j] * value[vBase + j * shape.valuePositionStride] : 0
                        }
                        output[b * shape.outputBatchStride + i * shape.outputPositionStride + h * vd + d] = o
                    }
                }
            }
        }
        return output
    }

    /// Σ product(e) for e < count in the order of tinyBLAS (`.batch`, when its shape rules allow:
    /// count a multiple of 16, and for P·V an output count that is a multiple of 4) or of
    /// `ggml_vec_dot_f16` (64-element steps, the rest added in Double).
    static func orderedDot(_ count: Int, summation: HalfPrecisionSummation, outputs: Int = 4,
                           _ product: (Int) -> Float) -> Float {
        if summation == .batch && count % 16 == 0 && outputs % 4 == 0 {
            var lanes = [Float](repeating: 0, count: 16)
            for e in 0..<count { lanes[e % 16] += product(e) }
            return reduceAdd16(lanes)
        }
        let whole = count / 64 * 64
        var accumulators = [Float](repeating: 0, count: 64)
        for e in 0..<whole { accumulators[e % 64] += product(e) }
        var lanes = [Float](repeating: 0, count: 16)
        for l in 0..<16 {
            let even: Float = accumulators[l] + accumulators[l + 32]
            let odd: Float = accumulators[l + 16] + accumulators[l + 48]
            lanes[l] = even + odd
        }
        var sum = Double(reduceAdd16(lanes))
        for e in whole..<count { sum += Double(product(e)) }
        return Float(sum)
    }

    /// `_mm512_reduce_add_ps`: lanes i + 8, then i + 4, then (0 + 2) + (1 + 3).
    static func reduceAdd16(_ x: [Float]) -> Float {
        let eight = (0..<8).map { x[$0] + x[$0 + 8] }
        let four = (0..<4).map { eight[$0] + eight[$0 + 4] }
        return (four[0] + four[2]) + (four[1] + four[3])
    }
}
