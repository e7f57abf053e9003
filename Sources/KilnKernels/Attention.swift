#if canImport(Glibc)
import Glibc
#endif

/// Fused scaled-dot-product attention: O = softmax(Q·Kᵀ·scale + mask)·V, computed one key block at
/// a time with an online softmax, so no queries×keys matrix is ever formed. One kernel serves
/// Llama prefill and decode (causal, grouped-query, KV cache via strides), BERT (bidirectional
/// with a key-padding mask) and the image models' self-attention (scale 1, value dimension ≠ key
/// dimension).
public enum Attention {
    /// Keys scored per online-softmax step.
    static let keyBlock = 64

    /// Computes `output` and, if given, the natural-log sum of exponentials of each attention row
    /// (`logSumExp`, [batch][head][query], −∞ for a row with no visible key), which `backward` needs.
    /// `keyMask`, if given, holds batchCount × keyCount bytes; 0 hides that key. A query that sees
    /// no key gets a zero output row.
    public static func forward(
        shape: AttentionShape, scale: Float, masking: AttentionMasking = .bidirectional,
        keyMask: UnsafeBufferPointer<UInt8>? = nil,
        query: UnsafeBufferPointer<Float>, key: UnsafeBufferPointer<Float>, value: UnsafeBufferPointer<Float>,
        output: UnsafeMutableBufferPointer<Float>, logSumExp: UnsafeMutableBufferPointer<Float>? = nil,
        pool: ThreadPool = .shared
    ) {
        validate(shape, masking, keyMask, query, key, value, output.count, logSumExp?.count, kernel: "forward")
        let rows = shape.rowCount
        guard rows > 0 else { return }
        let q = query.baseAddress!, o = output.baseAddress!
        let k = key.baseAddress, v = value.baseAddress
        let mask = keyMask?.baseAddress, lse = logSumExp?.baseAddress
        // Work per row ≈ keys × (headDimension + valueDimension); keep tasks ≳ 20k flops.
        let perRow = max(1, shape.keyCount * (shape.headDimension + shape.valueDimension))
        pool.parallelFor(rows, grain: max(1, 16_384 / perRow)) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: keyBlock + shape.valueDimension) { scratch in
                let scores = scratch.baseAddress!, accumulator = scores + keyBlock
                for row in range {
                    forwardRow(row, shape, scale, masking, mask, q, k, v, o, lse, scores, accumulator)
                }
            }
        }
    }

    /// One (batch, head, query) row of the forward pass.
    @inline(__always)
    static func forwardRow(
        _ row: Int, _ shape: AttentionShape, _ scale: Float, _ masking: AttentionMasking,
        _ mask: UnsafePointer<UInt8>?, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>?,
        _ v: UnsafePointer<Float>?, _ o: UnsafeMutablePointer<Float>, _ lse: UnsafeMutablePointer<Float>?,
        _ scores: UnsafeMutablePointer<Float>, _ accumulator: UnsafeMutablePointer<Float>
    ) {
        let (batch, head, i) = split(row, shape)
        let kvHead = head / shape.groupSize
        let hd = shape.headDimension, vd = shape.valueDimension
        // SAFETY: validate() checked every extent below against the buffers.
        let qRow = q + batch * shape.queryBatchStride + i * shape.queryPositionStride + head * hd
        let outRow = o + batch * shape.outputBatchStride + i * shape.outputPositionStride + head * vd
        let keyLimit = masking.keyLimit(query: i, keyCount: shape.keyCount)
        accumulator.update(repeating: 0, count: vd)
        var runningMax = -Float.infinity
        var runningSum: Float = 0
        var start = 0
        while start < keyLimit {
            let n = min(keyBlock, keyLimit - start)
            var blockMax = -Float.infinity
            for t in 0..<n {
                let j = start + t
                if let mask, mask[batch * shape.keyCount + j] == 0 {
                    scores[t] = -.infinity
                    continue
                }
                let kRow = k! + batch * shape.keyBatchStride + j * shape.keyPositionStride + kvHead * hd
                let s = dotUnchecked(qRow, kRow, hd) * scale
                scores[t] = s
                blockMax = max(blockMax, s)
            }
            if blockMax > -Float.infinity {
                if blockMax > runningMax {
                    if runningMax > -Float.infinity {
                        let correction = expScalar(runningMax - blockMax)
                        runningSum *= correction
                        scaleUnchecked(accumulator, correction, vd)
                    }
                    runningMax = blockMax
                }
                runningSum += expShiftedUnchecked(scores, scores, n, shift: runningMax)
                for t in 0..<n where scores[t] != 0 {
                    let vRow = v! + batch * shape.valueBatchStride + (start + t) * shape.valuePositionStride + kvHead * vd
                    axpyUnchecked(scores[t], vRow, accumulator, vd)
                }
            }
            start += n
        }
        if runningSum > 0 {
            let inverse = 1 / runningSum
            for d in 0..<vd { outRow[d] = accumulator[d] * inverse }
            lse?[row] = runningMax + logf(runningSum)
        } else {
            outRow.update(repeating: 0, count: vd)
            lse?[row] = -.infinity
        }
    }

    @inline(__always)
    static func split(_ row: Int, _ shape: AttentionShape) -> (batch: Int, head: Int, query: Int) {
        let i = row % shape.queryCount
        let rest = row / shape.queryCount
        return (rest / shape.headCount, rest % shape.headCount, i)
    }

    static func validate(
        _ shape: AttentionShape, _ masking: AttentionMasking, _ keyMask: UnsafeBufferPointer<UInt8>?,
        _ query: UnsafeBufferPointer<Float>, _ key: UnsafeBufferPointer<Float>, _ value: UnsafeBufferPointer<Float>,
        _ outputCount: Int, _ lseCount: Int?, kernel: StaticString
    ) {
        shape.validate(kernel: kernel)
        if case .causal(let offset) = masking {
            kernelRequire(offset >= 0, "causal queryOffset must be non-negative, got \(offset)", kernel: kernel)
        }
        requireCount(query.count, atLeast: shape.queryExtent, "query", kernel: kernel)
        requireCount(key.count, atLeast: shape.keyExtent, "key", kernel: kernel)
        requireCount(value.count, atLeast: shape.valueExtent, "value", kernel: kernel)
        requireCount(outputCount, atLeast: shape.outputExtent, "output", kernel: kernel)
        if let lseCount { requireCount(lseCount, atLeast: shape.rowCount, "logSumExp", kernel: kernel) }
        if let keyMask { requireCount(keyMask.count, atLeast: shape.batchCount * shape.keyCount, "keyMask", kernel: kernel) }
    }
}
