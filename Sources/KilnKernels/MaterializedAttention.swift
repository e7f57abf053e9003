import CKilnBLAS

extension Attention {
    /// Attention with the score matrix written out, one (batch, head) per task: S = scale·Q·Kᵀ by
    /// one GEMM, masked row softmax, O = P·V by a second GEMM. For short sequences (BERT-style
    /// encoders, a few hundred positions) the two GEMMs run at BLAS speed while the fused kernel's
    /// 64-key blocks would waste work on the ragged last block; memory is one L×L row block per task.
    /// Same contract as `forward` (no log-sum-exp): a key-padding mask hides keys, a query that sees
    /// no key gets a zero row. Call from outside the pool's tasks.
    public static func forwardMaterialized(
        shape: AttentionShape, scale: Float, masking: AttentionMasking = .bidirectional,
        keyMask: UnsafeBufferPointer<UInt8>? = nil,
        query: UnsafeBufferPointer<Float>, key: UnsafeBufferPointer<Float>, value: UnsafeBufferPointer<Float>,
        output: UnsafeMutableBufferPointer<Float>, pool: ThreadPool = .shared
    ) {
        validate(shape, masking, keyMask, query, key, value, output.count, nil, kernel: "forwardMaterialized")
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
        let mask = keyMask?.baseAddress
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
                        // softmax leaves a row with no visible key all zero.
                        VectorOps.softmax(UnsafeBufferPointer(start: row, count: ld), into: UnsafeMutableBufferPointer(start: row, count: ld), count: ld)
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(vd), Int32(used), 1,
                                scores, Int32(ld), vBase, Int32(shape.valuePositionStride),
                                0, oBase, Int32(shape.outputPositionStride))
                }
            }
        }
    }
}
