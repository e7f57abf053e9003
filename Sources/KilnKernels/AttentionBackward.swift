extension Attention {
    /// Gradients of `forward` with respect to query, key and value, given the forward's output and
    /// log-sum-exp and the gradient of the loss with respect to the output. The three gradient
    /// buffers are overwritten (laid out like query, key and value; their strides are the shape's).
    ///
    /// Per row: P = exp(S − lse) is recomputed block by block, dV += Pᵀ·dO, dP = dO·Vᵀ,
    /// dS = P ⊙ (dP − rowsum(dO ⊙ O)), dQ = scale·dS·K, dK = scale·dSᵀ·Q. Work is split by
    /// (batch, KV head), so every gradient element has exactly one writer.
    public static func backward(
        shape: AttentionShape, scale: Float, masking: AttentionMasking = .bidirectional,
        keyMask: UnsafeBufferPointer<UInt8>? = nil,
        query: UnsafeBufferPointer<Float>, key: UnsafeBufferPointer<Float>, value: UnsafeBufferPointer<Float>,
        output: UnsafeBufferPointer<Float>, logSumExp: UnsafeBufferPointer<Float>,
        outputGradient: UnsafeBufferPointer<Float>,
        queryGradient: UnsafeMutableBufferPointer<Float>, keyGradient: UnsafeMutableBufferPointer<Float>,
        valueGradient: UnsafeMutableBufferPointer<Float>,
        pool: ThreadPool = .shared
    ) {
        validate(shape, masking, keyMask, query, key, value, output.count, logSumExp.count, kernel: "backward")
        requireCount(outputGradient.count, atLeast: shape.outputExtent, "outputGradient", kernel: "backward")
        requireCount(queryGradient.count, atLeast: shape.queryExtent, "queryGradient", kernel: "backward")
        requireCount(keyGradient.count, atLeast: shape.keyExtent, "keyGradient", kernel: "backward")
        requireCount(valueGradient.count, atLeast: shape.valueExtent, "valueGradient", kernel: "backward")
        let units = shape.batchCount * shape.kvHeadCount
        guard units > 0 else { return }
        let bases = BackwardBuffers(
            q: query.baseAddress, k: key.baseAddress, v: value.baseAddress, o: output.baseAddress,
            lse: logSumExp.baseAddress, dO: outputGradient.baseAddress, dQ: queryGradient.baseAddress,
            dK: keyGradient.baseAddress, dV: valueGradient.baseAddress, mask: keyMask?.baseAddress)
        pool.parallelFor(units) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: keyBlock) { scratch in
                for unit in range {
                    backwardUnit(batch: unit / shape.kvHeadCount, kvHead: unit % shape.kvHeadCount,
                                 shape, scale, masking, bases, scratch.baseAddress!)
                }
            }
        }
    }

    struct BackwardBuffers {
        let q, k, v, o, lse, dO: UnsafePointer<Float>?
        let dQ, dK, dV: UnsafeMutablePointer<Float>?
        let mask: UnsafePointer<UInt8>?
    }

    static func backwardUnit(
        batch: Int, kvHead: Int, _ shape: AttentionShape, _ scale: Float, _ masking: AttentionMasking,
        _ b: BackwardBuffers, _ probabilities: UnsafeMutablePointer<Float>
    ) {
        let hd = shape.headDimension, vd = shape.valueDimension
        // SAFETY: validate() checked every extent below against the buffers.
        func kRow(_ j: Int) -> Int { batch * shape.keyBatchStride + j * shape.keyPositionStride + kvHead * hd }
        func vRow(_ j: Int) -> Int { batch * shape.valueBatchStride + j * shape.valuePositionStride + kvHead * vd }
        for j in 0..<shape.keyCount {
            b.dK!.advanced(by: kRow(j)).update(repeating: 0, count: hd)
            b.dV!.advanced(by: vRow(j)).update(repeating: 0, count: vd)
        }
        for head in (kvHead * shape.groupSize)..<((kvHead + 1) * shape.groupSize) {
            for i in 0..<shape.queryCount {
                let qOffset = batch * shape.queryBatchStride + i * shape.queryPositionStride + head * hd
                let oOffset = batch * shape.outputBatchStride + i * shape.outputPositionStride + head * vd
                let qRow = b.q! + qOffset, dQRow = b.dQ! + qOffset
                let oRow = b.o! + oOffset, dORow = b.dO! + oOffset
                dQRow.update(repeating: 0, count: hd)
                let rowLSE = b.lse![(batch * shape.headCount + head) * shape.queryCount + i]
                guard rowLSE > -Float.infinity else { continue }
                let rowDelta = dotUnchecked(dORow, oRow, vd)
                let keyLimit = masking.keyLimit(query: i, keyCount: shape.keyCount)
                var start = 0
                while start < keyLimit {
                    let n = min(keyBlock, keyLimit - start)
                    for t in 0..<n {
                        let j = start + t
                        if let mask = b.mask, mask[batch * shape.keyCount + j] == 0 {
                            probabilities[t] = -.infinity
                        } else {
                            probabilities[t] = dotUnchecked(qRow, b.k! + kRow(j), hd) * scale
                        }
                    }
                    _ = expShiftedUnchecked(probabilities, probabilities, n, shift: rowLSE)
                    for t in 0..<n {
                        let p = probabilities[t]
                        if p == 0 { continue }
                        let j = start + t
                        axpyUnchecked(p, dORow, b.dV! + vRow(j), vd)
                        let dp = dotUnchecked(dORow, b.v! + vRow(j), vd)
                        let ds = p * (dp - rowDelta) * scale
                        axpyUnchecked(ds, b.k! + kRow(j), dQRow, hd)
                        axpyUnchecked(ds, qRow, b.dK! + kRow(j), hd)
                    }
                    start += n
                }
            }
        }
    }
}
