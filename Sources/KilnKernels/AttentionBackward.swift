extension Attention {
    /// Gradients of `forward` with respect to query, key and value, given the forward's output and
    /// log-sum-exp and the gradient of the loss with respect to the output. The three gradient
    /// buffers are overwritten (laid out like query, key and value; their strides are the shape's).
    ///
    /// For four rows and a block of 64 keys at a time: P = exp(S − lse) is recomputed,
    /// dP = dO·Vᵀ, dS = scale·P ⊙ (dP − rowsum(dO ⊙ O)), then dV += Pᵀ·dO, dK += dSᵀ·Q and
    /// dQ += dS·K. Work is split by (batch, KV head), so every gradient element has one writer.
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
        validateBackward(shape, masking, keyMask, query, key, value, output, logSumExp, outputGradient,
                         queryGradient, keyGradient, valueGradient, kernel: "backward")
        let units = shape.batchCount * shape.kvHeadCount
        guard units > 0 else { return }
        guard shape.queryCount > 0 else {  // no query reads any key: their gradients are zero
            if shape.keyCount > 0 {
                keyGradient.update(repeating: 0)
                valueGradient.update(repeating: 0)
            }
            return
        }
        guard shape.keyCount > 0 else {
            queryGradient.update(repeating: 0)
            return
        }
        let b = BackwardBuffers(
            q: query.baseAddress!, k: key.baseAddress!, v: value.baseAddress!, o: output.baseAddress!,
            lse: logSumExp.baseAddress!, dO: outputGradient.baseAddress!, dQ: queryGradient.baseAddress!,
            dK: keyGradient.baseAddress!, dV: valueGradient.baseAddress!, mask: keyMask?.baseAddress)
        let hd = shape.headDimension, vd = shape.valueDimension
        let paddedKeys = (shape.keyCount + keyBlock - 1) / keyBlock * keyBlock
        // Per task: Kᵀ and Vᵀ of one unit, P and dS for four rows, four rows of dQ.
        let scratchCount = (hd + vd) * paddedKeys + 2 * 4 * keyBlock + 4 * hd
        pool.parallelFor(units) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
            defer { scratch.deallocate() }
            for unit in range {
                backwardUnit(batch: unit / shape.kvHeadCount, kvHead: unit % shape.kvHeadCount, shape, scale, masking,
                             b, scratch, paddedKeys)
            }
        }
    }

    /// The size checks every backward kernel makes before touching memory.
    static func validateBackward(
        _ shape: AttentionShape, _ masking: AttentionMasking, _ keyMask: UnsafeBufferPointer<UInt8>?,
        _ query: UnsafeBufferPointer<Float>, _ key: UnsafeBufferPointer<Float>, _ value: UnsafeBufferPointer<Float>,
        _ output: UnsafeBufferPointer<Float>, _ logSumExp: UnsafeBufferPointer<Float>, _ outputGradient: UnsafeBufferPointer<Float>,
        _ queryGradient: UnsafeMutableBufferPointer<Float>, _ keyGradient: UnsafeMutableBufferPointer<Float>,
        _ valueGradient: UnsafeMutableBufferPointer<Float>, kernel: StaticString
    ) {
        validate(shape, masking, keyMask, query, key, value, output.count, logSumExp.count, kernel: kernel)
        requireCount(outputGradient.count, atLeast: shape.outputExtent, "outputGradient", kernel: kernel)
        requireCount(queryGradient.count, atLeast: shape.queryExtent, "queryGradient", kernel: kernel)
        requireCount(keyGradient.count, atLeast: shape.keyExtent, "keyGradient", kernel: kernel)
        requireCount(valueGradient.count, atLeast: shape.valueExtent, "valueGradient", kernel: kernel)
    }

    struct BackwardBuffers {
        let q, k, v, o, lse, dO: UnsafePointer<Float>
        let dQ, dK, dV: UnsafeMutablePointer<Float>
        let mask: UnsafePointer<UInt8>?
    }

    static func backwardUnit(
        batch: Int, kvHead: Int, _ shape: AttentionShape, _ scale: Float, _ masking: AttentionMasking,
        _ b: BackwardBuffers, _ scratch: UnsafeMutablePointer<Float>, _ paddedKeys: Int
    ) {
        let hd = shape.headDimension, vd = shape.valueDimension, group = shape.groupSize
        let keysT = scratch, valuesT = keysT + hd * paddedKeys
        let probabilities = valuesT + vd * paddedKeys          // [4][64] P
        let scoreGradients = probabilities + 4 * keyBlock      // [4][64] dP, then dS
        let queryGradients = scoreGradients + 4 * keyBlock     // [4][hd]
        transposeHead(b.k, batchStride: shape.keyBatchStride, positionStride: shape.keyPositionStride,
                      batch: batch, offset: kvHead * hd, dimension: hd, count: shape.keyCount, into: keysT, stride: paddedKeys)
        transposeHead(b.v, batchStride: shape.valueBatchStride, positionStride: shape.valuePositionStride,
                      batch: batch, offset: kvHead * vd, dimension: vd, count: shape.keyCount, into: valuesT, stride: paddedKeys)
        // SAFETY: validate() checked every extent below against the buffers.
        let kBase = b.k + batch * shape.keyBatchStride + kvHead * hd
        let dKBase = b.dK + batch * shape.keyBatchStride + kvHead * hd
        let dVBase = b.dV + batch * shape.valueBatchStride + kvHead * vd
        for j in 0..<shape.keyCount {
            (dKBase + j * shape.keyPositionStride).update(repeating: 0, count: hd)
            (dVBase + j * shape.valuePositionStride).update(repeating: 0, count: vd)
        }
        let rows = group * shape.queryCount  // row r: query r / group, head kvHead·group + r % group
        var first = 0
        while first < rows {
            let count = min(4, rows - first)
            // Fixed-size, on the stack: nothing is allocated per row group.
            var q = InlineArray<4, UnsafePointer<Float>>(repeating: b.q), dO = InlineArray<4, UnsafePointer<Float>>(repeating: b.dO)
            var dQ = InlineArray<4, UnsafeMutablePointer<Float>>(repeating: b.dQ)
            var limits = InlineArray<4, Int>(repeating: 0)
            var lse = InlineArray<4, Float>(repeating: 0), delta = InlineArray<4, Float>(repeating: 0)
            for k in 0..<4 {
                let r = first + min(k, count - 1)
                let i = r / group, head = kvHead * group + r % group
                let qOffset = batch * shape.queryBatchStride + i * shape.queryPositionStride + head * hd
                let oOffset = batch * shape.outputBatchStride + i * shape.outputPositionStride + head * vd
                q[k] = b.q + qOffset
                dQ[k] = b.dQ + qOffset
                dO[k] = b.dO + oOffset
                let rowLSE = b.lse[(batch * shape.headCount + head) * shape.queryCount + i]
                lse[k] = rowLSE
                limits[k] = rowLSE > -Float.infinity && k < count ? masking.keyLimit(query: i, keyCount: shape.keyCount) : 0
                delta[k] = dotUnchecked(b.dO + oOffset, b.o + oOffset, vd)
            }
            queryGradients.update(repeating: 0, count: 4 * hd)
            let groupLimit = max(max(limits[0], limits[1]), max(limits[2], limits[3]))
            var start = 0
            while start < groupLimit {
                let n = min(keyBlock, groupLimit - start)
                scoreFourRows(keysT + start, paddedKeys, hd, q[0], q[1], q[2], q[3], probabilities, 4, scale)
                scoreFourRows(valuesT + start, paddedKeys, vd, dO[0], dO[1], dO[2], dO[3], scoreGradients, 4, 1)
                for k in 0..<4 {
                    let p = probabilities + k * keyBlock, ds = scoreGradients + k * keyBlock
                    let visible = min(n, max(0, limits[k] - start))
                    let shift = Vector16(repeating: lse[k]), d = Vector16(repeating: delta[k])
                    for offset in stride(from: 0, to: keyBlock, by: 16) {
                        let pv = exp16(p.load16(offset) - shift)
                        p.store16(pv, at: offset)
                        ds.store16(pv * (ds.load16(offset) - d) * scale, at: offset)
                    }
                    for j in visible..<keyBlock {
                        p[j] = 0
                        ds[j] = 0
                    }
                    if let mask = b.mask {
                        let m = mask + batch * shape.keyCount + start
                        for j in 0..<visible where m[j] == 0 {
                            p[j] = 0
                            ds[j] = 0
                        }
                    }
                }
                scatterFourRows(probabilities, n, dO[0], dO[1], dO[2], dO[3], dVBase + start * shape.valuePositionStride,
                                shape.valuePositionStride, vd)
                scatterFourRows(scoreGradients, n, q[0], q[1], q[2], q[3], dKBase + start * shape.keyPositionStride,
                                shape.keyPositionStride, hd)
                accumulateFourRows(scoreGradients, 4, n, kBase + start * shape.keyPositionStride, shape.keyPositionStride,
                                   queryGradients, hd)
                start += n
            }
            for k in 0..<count { dQ[k].update(from: queryGradients + k * hd, count: hd) }
            first += count
        }
    }

    /// out[d·stride + j] = source[batch, j, offset + d] for j < count; columns count..<stride are 0.
    static func transposeHead(
        _ source: UnsafePointer<Float>, batchStride: Int, positionStride: Int, batch: Int, offset: Int,
        dimension: Int, count: Int, into out: UnsafeMutablePointer<Float>, stride: Int
    ) {
        for d in 0..<dimension { (out + (d &* stride &+ count)).update(repeating: 0, count: stride &- count) }
        let base = source + (batch &* batchStride &+ offset)
        var j0 = 0
        while j0 < count {  // 16 positions at a time keeps the written lines in L1
            let j1 = min(count, j0 &+ 16)
            for d in 0..<dimension {
                let line = out + (d &* stride)
                for j in j0..<j1 { line[j] = base[j &* positionStride &+ d] }
            }
            j0 = j1
        }
    }

    /// targets[j] += Σ_r weights[r][j] · source_r for j < n (rows with zero weights contribute
    /// nothing), 16 lanes at a time with the four sources' lanes held in registers.
    @inline(__always)
    static func scatterFourRows(
        _ weights: UnsafePointer<Float>, _ n: Int,
        _ s0: UnsafePointer<Float>, _ s1: UnsafePointer<Float>, _ s2: UnsafePointer<Float>, _ s3: UnsafePointer<Float>,
        _ targets: UnsafeMutablePointer<Float>, _ targetStride: Int, _ dimension: Int
    ) {
        let w1 = weights + keyBlock, w2 = w1 + keyBlock, w3 = w2 + keyBlock
        var c = 0
        while c + 16 <= dimension {
            let x0 = s0.load16(c), x1 = s1.load16(c), x2 = s2.load16(c), x3 = s3.load16(c)
            for j in 0..<n {
                let t = targets + (j &* targetStride)
                var v = t.load16(c)
                v.addProduct(Vector16(repeating: weights[j]), x0)
                v.addProduct(Vector16(repeating: w1[j]), x1)
                v.addProduct(Vector16(repeating: w2[j]), x2)
                v.addProduct(Vector16(repeating: w3[j]), x3)
                t.store16(v, at: c)
            }
            c += 16
        }
        if c < dimension {
            for j in 0..<n {
                let t = targets + (j &* targetStride)
                let a = weights[j], b = w1[j], e = w2[j], f = w3[j]
                for d in c..<dimension { t[d] += a * s0[d] + b * s1[d] + e * s2[d] + f * s3[d] }
            }
        }
    }
}
