import CKilnBLAS
import Foundation

extension Attention {
    /// Attention with the score matrix written out, one (batch, head) per task: S = scale·Q·Kᵀ by
    /// one GEMM, masked row softmax, O = P·V by a second GEMM. For short sequences (BERT-style
    /// encoders, a few hundred positions) the two GEMMs run at BLAS speed while the fused kernel's
    /// 64-key blocks would waste work on the ragged last block; memory is one L×L row block per task.
    /// Same contract as `forward`, log-sum-exp included: a key-padding mask hides keys, a query that
    /// sees no key gets a zero row. Call from outside the pool's tasks.
    public static func forwardMaterialized(
        shape: AttentionShape, scale: Float, masking: AttentionMasking = .bidirectional,
        keyMask: UnsafeBufferPointer<UInt8>? = nil,
        query: UnsafeBufferPointer<Float>, key: UnsafeBufferPointer<Float>, value: UnsafeBufferPointer<Float>,
        output: UnsafeMutableBufferPointer<Float>, logSumExp: UnsafeMutableBufferPointer<Float>? = nil, pool: ThreadPool = .shared
    ) {
        validate(shape, masking, keyMask, query, key, value, output.count, logSumExp?.count, kernel: "forwardMaterialized")
        guard shape.rowCount > 0 else { return }
        _ = BLAS.ownsThreading
        let q = query.baseAddress!, o = output.baseAddress!
        let hd = shape.headDimension, vd = shape.valueDimension, n = shape.keyCount, m = shape.queryCount
        guard n > 0, let k = key.baseAddress, let v = value.baseAddress else {
            for b in 0..<shape.batchCount {
                for i in 0..<m {
                    (o + b * shape.outputBatchStride + i * shape.outputPositionStride).update(repeating: 0, count: shape.headCount * vd)
                }
            }
            return
        }
        let mask = keyMask?.baseAddress, lse = logSumExp?.baseAddress
        // Score rows are padded to whole 16-lane vectors (padding set to −∞), so the softmax has no
        // scalar tail; keys after a batch's last visible key are dropped from both GEMMs.
        let stride = (n + 15) & ~15
        pool.parallelFor(shape.batchCount * shape.headCount) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: m * stride) { scratch in
                let scores = scratch.baseAddress!
                for unit in range {
                    let batch = unit / shape.headCount, head = unit % shape.headCount, kvHead = head / shape.groupSize
                    let qBase = q + batch * shape.queryBatchStride + head * hd
                    let kBase = k + batch * shape.keyBatchStride + kvHead * hd
                    let vBase = v + batch * shape.valueBatchStride + kvHead * vd
                    let oBase = o + batch * shape.outputBatchStride + head * vd
                    let keys = mask.map { $0 + batch * n }
                    var used = n
                    if let keys { while used > 0 && keys[used - 1] == 0 { used -= 1 } }
                    guard used > 0 else {
                        for i in 0..<m { (oBase + i * shape.outputPositionStride).update(repeating: 0, count: vd) }
                        lse?.advanced(by: unit * m).update(repeating: -.infinity, count: m)
                        continue
                    }
                    let ld = (used + 15) & ~15
                    let holes = keys.map { keys in (0..<used).contains { keys[$0] == 0 } } ?? false
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(used), Int32(hd), scale,
                                qBase, Int32(shape.queryPositionStride), kBase, Int32(shape.keyPositionStride),
                                0, scores, Int32(ld))
                    for i in 0..<m {
                        let row = scores + i * ld
                        let visible = min(used, masking.keyLimit(query: i, keyCount: n))
                        (row + visible).update(repeating: -.infinity, count: ld - visible)
                        if holes, let keys {
                            for j in 0..<visible where keys[j] == 0 { row[j] = -.infinity }
                        }
                        // A row with no visible key becomes all zero.
                        let largest = maxUnchecked(row, ld)
                        guard largest > -.infinity else {
                            row.update(repeating: 0, count: ld)
                            lse?[unit * m + i] = -.infinity
                            continue
                        }
                        let total = expBelowShiftPadded(row, row, ld, shift: largest)
                        scaleUnchecked(row, 1 / total, ld)
                        lse?[unit * m + i] = largest + log(total)
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(vd), Int32(used), 1,
                                scores, Int32(ld), vBase, Int32(shape.valuePositionStride),
                                0, oBase, Int32(shape.outputPositionStride))
                }
            }
        }
    }
}

extension Attention {
    /// Gradients of `forwardMaterialized` (or `forward`: same contract) with the probabilities
    /// recomputed as one matrix per (batch, head): P = exp(scale·Q·Kᵀ − lse), then
    /// dV = Pᵀ·dO, dP = dO·Vᵀ, dS = scale·P ⊙ (dP − rowsum(dO ⊙ O)), dQ = dS·K, dK = dSᵀ·Q, each
    /// a GEMM. For short sequences with small heads (the image models' self-attention: 49 or 196
    /// positions, head dimension 8) this runs at BLAS speed where the fused kernel's four-row
    /// blocks cannot. Gradients are overwritten; work is split by (batch, KV head).
    public static func backwardMaterialized(
        shape: AttentionShape, scale: Float, masking: AttentionMasking = .bidirectional,
        keyMask: UnsafeBufferPointer<UInt8>? = nil,
        query: UnsafeBufferPointer<Float>, key: UnsafeBufferPointer<Float>, value: UnsafeBufferPointer<Float>,
        output: UnsafeBufferPointer<Float>, logSumExp: UnsafeBufferPointer<Float>,
        outputGradient: UnsafeBufferPointer<Float>,
        queryGradient: UnsafeMutableBufferPointer<Float>, keyGradient: UnsafeMutableBufferPointer<Float>,
        valueGradient: UnsafeMutableBufferPointer<Float>,
        pool: ThreadPool = .shared
    ) {
        validateBackward(shape, masking, keyMask, query, key, value, output, logSumExp, outputGradient,
                         queryGradient, keyGradient, valueGradient, kernel: "backwardMaterialized")
        let m = shape.queryCount, n = shape.keyCount
        guard shape.batchCount > 0, m > 0, n > 0 else {
            // Nothing reads anything: whatever gradients exist are zero.
            if shape.queryExtent > 0 { queryGradient.update(repeating: 0) }
            if shape.keyExtent > 0 { keyGradient.update(repeating: 0) }
            if shape.valueExtent > 0 { valueGradient.update(repeating: 0) }
            return
        }
        _ = BLAS.ownsThreading
        let hd = shape.headDimension, vd = shape.valueDimension
        let q = query.baseAddress!, k = key.baseAddress!, v = value.baseAddress!, o = output.baseAddress!
        let lse = logSumExp.baseAddress!, dO = outputGradient.baseAddress!
        let dQ = queryGradient.baseAddress!, dK = keyGradient.baseAddress!, dV = valueGradient.baseAddress!
        let mask = keyMask?.baseAddress
        let ld = (n + 15) & ~15
        pool.parallelFor(shape.batchCount * shape.kvHeadCount) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * m * ld + m) { scratch in
                let p = scratch.baseAddress!, dP = p + m * ld, rowDots = dP + m * ld
                for unit in range {
                    let batch = unit / shape.kvHeadCount, kvHead = unit % shape.kvHeadCount
                    let kBase = k + batch * shape.keyBatchStride + kvHead * hd
                    let vBase = v + batch * shape.valueBatchStride + kvHead * vd
                    let dKBase = dK + batch * shape.keyBatchStride + kvHead * hd
                    let dVBase = dV + batch * shape.valueBatchStride + kvHead * vd
                    let keys = mask.map { $0 + batch * n }
                    for member in 0..<shape.groupSize {
                        let head = kvHead * shape.groupSize + member
                        let qBase = q + batch * shape.queryBatchStride + head * hd
                        let oBase = o + batch * shape.outputBatchStride + head * vd
                        let dOBase = dO + batch * shape.outputBatchStride + head * vd
                        let dQBase = dQ + batch * shape.queryBatchStride + head * hd
                        let rows = lse + (batch * shape.headCount + head) * m
                        let accumulate: Float = member == 0 ? 0 : 1
                        // P = exp(scale·Q·Kᵀ − lse), hidden keys 0.
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(hd), scale,
                                    qBase, Int32(shape.queryPositionStride), kBase, Int32(shape.keyPositionStride), 0, p, Int32(ld))
                        for i in 0..<m {
                            let row = p + i * ld
                            let visible = masking.keyLimit(query: i, keyCount: n)
                            (row + visible).update(repeating: -.infinity, count: ld - visible)
                            if let keys { for j in 0..<visible where keys[j] == 0 { row[j] = -.infinity } }
                            if rows[i] == -.infinity {
                                row.update(repeating: 0, count: ld)
                            } else {
                                _ = expBelowShiftPadded(row, row, ld, shift: rows[i])
                            }
                            rowDots[i] = VectorOps.dotUnchecked(dOBase + i * shape.outputPositionStride, oBase + i * shape.outputPositionStride, count: vd)
                        }
                        // dV (+)= Pᵀ·dO; dP = dO·Vᵀ.
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(vd), Int32(m), 1,
                                    p, Int32(ld), dOBase, Int32(shape.outputPositionStride), accumulate, dVBase, Int32(shape.valuePositionStride))
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(vd), 1,
                                    dOBase, Int32(shape.outputPositionStride), vBase, Int32(shape.valuePositionStride), 0, dP, Int32(ld))
                        // dS = scale·P ⊙ (dP − D), in place of dP.
                        for i in 0..<m {
                            let pr = p + i * ld, dr = dP + i * ld, d = rowDots[i]
                            var j = 0
                            while j + 16 <= n {
                                dr.store16(pr.load16(j) * (dr.load16(j) - d) * scale, at: j)
                                j += 16
                            }
                            while j < n {
                                dr[j] = pr[j] * (dr[j] - d) * scale
                                j += 1
                            }
                        }
                        // dQ = dS·K; dK (+)= dSᵀ·Q.
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(hd), Int32(n), 1,
                                    dP, Int32(ld), kBase, Int32(shape.keyPositionStride), 0, dQBase, Int32(shape.queryPositionStride))
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(hd), Int32(m), 1,
                                    dP, Int32(ld), qBase, Int32(shape.queryPositionStride), accumulate, dKBase, Int32(shape.keyPositionStride))
                    }
                }
            }
        }
    }
}
