#if canImport(Glibc)
import Glibc
#endif

/// Fused scaled-dot-product attention: O = softmax(Q·Kᵀ·scale + mask)·V, computed one block of
/// 64 keys at a time with an online softmax, so no queries×keys matrix is ever formed. One kernel
/// serves Llama prefill and decode (causal, grouped-query, KV cache via strides), BERT
/// (bidirectional with a key-padding mask) and the image models' self-attention (scale 1, value
/// dimension ≠ key dimension).
///
/// Each call first transposes every KV head's keys (Kᵀ, padded to whole blocks). Work is then
/// split into tiles: one (batch, KV head) and a run of queries, covering every query head that
/// shares the KV head. A tile scores four rows at a time as outer products with Kᵀ (16 vector
/// accumulators) and accumulates P·V the same way. Decode-sized calls (fewer than four rows per
/// KV head) skip the transposition and go row by row.
public enum Attention {
    /// Keys scored per online-softmax step.
    static let keyBlock = 64
    /// Rows (query head × query) per tile, bounding the stack scratch.
    static let tileRows = 64

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
        guard shape.rowCount > 0 else { return }
        if shape.queryCount * shape.groupSize < 4 {
            forwardByRows(shape, scale, masking, keyMask, query, key, value, output, logSumExp, pool)
            return
        }
        let queriesPerTile = max(1, tileRows / shape.groupSize)
        let tilesPerHead = (shape.queryCount + queriesPerTile - 1) / queriesPerTile
        let tiles = shape.batchCount * shape.kvHeadCount * tilesPerHead
        let buffers = ForwardBuffers(
            q: query.baseAddress!, k: key.baseAddress, v: value.baseAddress, o: output.baseAddress!,
            lse: logSumExp?.baseAddress, mask: keyMask?.baseAddress)
        let hd = shape.headDimension, vd = shape.valueDimension
        let rows = shape.groupSize * queriesPerTile
        // Kᵀ for every (batch, KV head), keys padded to whole blocks with zeros: transposed once
        // here rather than once per tile.
        let paddedKeys = (shape.keyCount + keyBlock - 1) / keyBlock * keyBlock
        let units = shape.batchCount * shape.kvHeadCount
        let keysT = UnsafeMutablePointer<Float>.allocate(capacity: max(1, units * hd * paddedKeys))
        defer { keysT.deallocate() }
        pool.parallelFor(units) { range in
            for unit in range {
                guard let key = buffers.k else { continue }
                transposeHead(key, batchStride: shape.keyBatchStride, positionStride: shape.keyPositionStride,
                              batch: unit / shape.kvHeadCount, offset: (unit % shape.kvHeadCount) * hd, dimension: hd,
                              count: shape.keyCount, into: keysT + unit * hd * paddedKeys, stride: paddedKeys)
            }
        }
        let scratchCount = rows * keyBlock + rows * vd + 2 * rows
        pool.parallelFor(tiles) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: scratchCount) { scratch in
                let scores = scratch.baseAddress!
                let accumulators = scores + rows * keyBlock
                let maxima = accumulators + rows * vd
                let sums = maxima + rows
                let work = TileScratch(keysT: keysT, keysTStride: paddedKeys, scores: scores, accumulators: accumulators,
                                       maxima: maxima, sums: sums)
                for tile in range {
                    let queryTile = tile % tilesPerHead
                    let rest = tile / tilesPerHead
                    let first = queryTile * queriesPerTile
                    forwardTile(batch: rest / shape.kvHeadCount, kvHead: rest % shape.kvHeadCount,
                                queries: first..<min(shape.queryCount, first + queriesPerTile),
                                shape, scale, masking, buffers, work)
                }
            }
        }
    }

    struct ForwardBuffers {
        let q: UnsafePointer<Float>
        let k, v: UnsafePointer<Float>?
        let o: UnsafeMutablePointer<Float>
        let lse: UnsafeMutablePointer<Float>?
        let mask: UnsafePointer<UInt8>?
    }

    struct TileScratch {
        let keysT: UnsafeMutablePointer<Float>       // [unit][headDimension][paddedKeys]: Kᵀ
        let keysTStride: Int
        let scores: UnsafeMutablePointer<Float>      // [rows][64]: scores, then probabilities
        let accumulators: UnsafeMutablePointer<Float>  // [rows][valueDimension]: unnormalized outputs
        let maxima: UnsafeMutablePointer<Float>      // [rows]: running max of each row's scores
        let sums: UnsafeMutablePointer<Float>        // [rows]: running Σ exp(score − max)
    }

    /// All query heads of one KV head, for a run of queries. Row r is query queries[r / groupSize],
    /// head kvHead·groupSize + r % groupSize.
    static func forwardTile(
        batch: Int, kvHead: Int, queries: Range<Int>, _ shape: AttentionShape, _ scale: Float,
        _ masking: AttentionMasking, _ b: ForwardBuffers, _ w: TileScratch
    ) {
        let group = shape.groupSize, hd = shape.headDimension, vd = shape.valueDimension
        let rows = queries.count * group
        // SAFETY: validate() checked every extent below against the buffers.
        @inline(__always) func queryRow(_ r: Int) -> UnsafePointer<Float> {
            b.q + batch * shape.queryBatchStride + (queries.lowerBound + r / group) * shape.queryPositionStride
                + (kvHead * group + r % group) * hd
        }
        @inline(__always) func limit(_ r: Int) -> Int {
            masking.keyLimit(query: queries.lowerBound + r / group, keyCount: shape.keyCount)
        }
        w.accumulators.update(repeating: 0, count: rows * vd)
        w.maxima.update(repeating: -.infinity, count: rows)
        w.sums.update(repeating: 0, count: rows)
        let tileLimit = limit(rows - 1)  // the last query sees the most keys
        var start = 0
        while start < tileLimit {
            let n = min(keyBlock, tileLimit - start)
            let keysT = w.keysT + (batch * shape.kvHeadCount + kvHead) * hd * w.keysTStride + start
            var r = 0
            while r < rows {
                scoreFourRows(keysT, w.keysTStride, hd, queryRow(r), queryRow(min(r + 1, rows - 1)), queryRow(min(r + 2, rows - 1)),
                              queryRow(min(r + 3, rows - 1)), w.scores + r * keyBlock, min(4, rows - r), scale)
                r += 4
            }
            // Masks: keys past the block, past each row's causal limit, or hidden by the key mask.
            for r in 0..<rows {
                let row = w.scores + r * keyBlock
                let visible = min(n, max(0, limit(r) - start))
                for j in visible..<keyBlock { row[j] = -.infinity }
                if let mask = b.mask {
                    let m = mask + batch * shape.keyCount + start
                    for j in 0..<visible where m[j] == 0 { row[j] = -.infinity }
                }
                onlineSoftmaxStep(row, w.accumulators + r * vd, vd, w.maxima + r, w.sums + r)
            }
            let vBlock = b.v! + batch * shape.valueBatchStride + start * shape.valuePositionStride + kvHead * vd
            r = 0
            while r < rows {
                accumulateFourRows(w.scores + r * keyBlock, min(4, rows - r), n, vBlock, shape.valuePositionStride,
                                   w.accumulators + r * vd, vd)
                r += 4
            }
            start += n
        }
        for r in 0..<rows {
            let i = queries.lowerBound + r / group, head = kvHead * group + r % group
            let out = b.o + batch * shape.outputBatchStride + i * shape.outputPositionStride + head * vd
            let rowIndex = (batch * shape.headCount + head) * shape.queryCount + i
            if w.sums[r] > 0 {
                let inverse = 1 / w.sums[r]
                let acc = w.accumulators + r * vd
                for d in 0..<vd { out[d] = acc[d] * inverse }
                b.lse?[rowIndex] = w.maxima[r] + logf(w.sums[r])
            } else {
                out.update(repeating: 0, count: vd)
                b.lse?[rowIndex] = -.infinity
            }
        }
    }

    /// scores[r][0..<64] = scale · Σ_d q_r[d] · Kᵀ[d][0..<64] for up to four rows (rows past
    /// `count` are computed from a repeated pointer and not stored).
    @inline(__always)
    static func scoreFourRows(
        _ keysT: UnsafePointer<Float>, _ stride: Int, _ hd: Int,
        _ q0: UnsafePointer<Float>, _ q1: UnsafePointer<Float>, _ q2: UnsafePointer<Float>, _ q3: UnsafePointer<Float>,
        _ out: UnsafeMutablePointer<Float>, _ count: Int, _ scale: Float
    ) {
        var a0 = Vector16(), a1 = Vector16(), a2 = Vector16(), a3 = Vector16()
        var b0 = Vector16(), b1 = Vector16(), b2 = Vector16(), b3 = Vector16()
        var c0 = Vector16(), c1 = Vector16(), c2 = Vector16(), c3 = Vector16()
        var d0 = Vector16(), d1 = Vector16(), d2 = Vector16(), d3 = Vector16()
        for d in 0..<hd {
            let k = keysT + (d &* stride)
            let k0 = k.load16(0), k1 = k.load16(16), k2 = k.load16(32), k3 = k.load16(48)
            let x0 = Vector16(repeating: q0[d]), x1 = Vector16(repeating: q1[d])
            let x2 = Vector16(repeating: q2[d]), x3 = Vector16(repeating: q3[d])
            a0.addProduct(x0, k0); a1.addProduct(x0, k1); a2.addProduct(x0, k2); a3.addProduct(x0, k3)
            b0.addProduct(x1, k0); b1.addProduct(x1, k1); b2.addProduct(x1, k2); b3.addProduct(x1, k3)
            c0.addProduct(x2, k0); c1.addProduct(x2, k1); c2.addProduct(x2, k2); c3.addProduct(x2, k3)
            d0.addProduct(x3, k0); d1.addProduct(x3, k1); d2.addProduct(x3, k2); d3.addProduct(x3, k3)
        }
        out.store16(a0 * scale, at: 0); out.store16(a1 * scale, at: 16); out.store16(a2 * scale, at: 32); out.store16(a3 * scale, at: 48)
        guard count > 1 else { return }
        let o1 = out + keyBlock
        o1.store16(b0 * scale, at: 0); o1.store16(b1 * scale, at: 16); o1.store16(b2 * scale, at: 32); o1.store16(b3 * scale, at: 48)
        guard count > 2 else { return }
        let o2 = o1 + keyBlock
        o2.store16(c0 * scale, at: 0); o2.store16(c1 * scale, at: 16); o2.store16(c2 * scale, at: 32); o2.store16(c3 * scale, at: 48)
        guard count > 3 else { return }
        let o3 = o2 + keyBlock
        o3.store16(d0 * scale, at: 0); o3.store16(d1 * scale, at: 16); o3.store16(d2 * scale, at: 32); o3.store16(d3 * scale, at: 48)
    }

    /// Folds one block of 64 scores into a row's running max and sum, rescaling the row's
    /// accumulator when the max grows; leaves exp(score − max) in `scores`.
    @_transparent
    static func onlineSoftmaxStep(
        _ scores: UnsafeMutablePointer<Float>, _ accumulator: UnsafeMutablePointer<Float>, _ vd: Int,
        _ runningMax: UnsafeMutablePointer<Float>, _ runningSum: UnsafeMutablePointer<Float>
    ) {
        let blockMax = horizontalMax(vectorMax(vectorMax(scores.load16(0), scores.load16(16)),
                                               vectorMax(scores.load16(32), scores.load16(48))))
        guard blockMax > -Float.infinity else {
            scores.update(repeating: 0, count: keyBlock)
            return
        }
        if blockMax > runningMax.pointee {
            if runningMax.pointee > -Float.infinity {
                let correction = expScalar(runningMax.pointee - blockMax)
                runningSum.pointee *= correction
                scaleUnchecked(accumulator, correction, vd)
            }
            runningMax.pointee = blockMax
        }
        let m = Vector16(repeating: runningMax.pointee)
        // One vector at a time: computing all four exponentials together spills registers.
        var total = Vector16()
        for offset in stride(from: 0, to: keyBlock, by: 16) {
            let p = exp16(scores.load16(offset) - m)
            scores.store16(p, at: offset)
            total += p
        }
        runningSum.pointee += horizontalSum(total)
    }

    /// accumulator[r] += Σ_j p[r][j] · V[j] for up to four rows, 16 value lanes at a time.
    @inline(__always)
    static func accumulateFourRows(
        _ probabilities: UnsafePointer<Float>, _ count: Int, _ n: Int, _ values: UnsafePointer<Float>,
        _ valueStride: Int, _ accumulators: UnsafeMutablePointer<Float>, _ vd: Int
    ) {
        let p1 = probabilities + keyBlock * min(1, count - 1)
        let p2 = probabilities + keyBlock * min(2, count - 1)
        let p3 = probabilities + keyBlock * min(3, count - 1)
        let acc1 = accumulators + vd * min(1, count - 1)
        let acc2 = accumulators + vd * min(2, count - 1)
        let acc3 = accumulators + vd * min(3, count - 1)
        var c = 0
        while c + 32 <= vd {  // 32 value lanes per pass: 8 accumulators, two V loads per key
            var a0 = accumulators.load16(c), a1 = acc1.load16(c), a2 = acc2.load16(c), a3 = acc3.load16(c)
            var b0 = accumulators.load16(c + 16), b1 = acc1.load16(c + 16), b2 = acc2.load16(c + 16), b3 = acc3.load16(c + 16)
            for j in 0..<n {
                let row = values + j * valueStride
                let v = row.load16(c), w = row.load16(c + 16)
                let x0 = Vector16(repeating: probabilities[j]), x1 = Vector16(repeating: p1[j])
                let x2 = Vector16(repeating: p2[j]), x3 = Vector16(repeating: p3[j])
                a0.addProduct(x0, v); a1.addProduct(x1, v); a2.addProduct(x2, v); a3.addProduct(x3, v)
                b0.addProduct(x0, w); b1.addProduct(x1, w); b2.addProduct(x2, w); b3.addProduct(x3, w)
            }
            // Store in reverse so that duplicated rows (count < 4) end with row count−1's value.
            acc3.store16(a3, at: c); acc2.store16(a2, at: c); acc1.store16(a1, at: c); accumulators.store16(a0, at: c)
            acc3.store16(b3, at: c + 16); acc2.store16(b2, at: c + 16); acc1.store16(b1, at: c + 16)
            accumulators.store16(b0, at: c + 16)
            c += 32
        }
        while c + 16 <= vd {
            var a0 = accumulators.load16(c), a1 = acc1.load16(c), a2 = acc2.load16(c), a3 = acc3.load16(c)
            for j in 0..<n {
                let v = (values + j * valueStride).load16(c)
                a0.addProduct(Vector16(repeating: probabilities[j]), v)
                a1.addProduct(Vector16(repeating: p1[j]), v)
                a2.addProduct(Vector16(repeating: p2[j]), v)
                a3.addProduct(Vector16(repeating: p3[j]), v)
            }
            acc3.store16(a3, at: c); acc2.store16(a2, at: c); acc1.store16(a1, at: c); accumulators.store16(a0, at: c)
            c += 16
        }
        if c < vd {  // value lanes past the last multiple of 16
            for r in 0..<count {
                let p = probabilities + r * keyBlock, acc = accumulators + r * vd
                for j in 0..<n where p[j] != 0 {
                    let v = values + j * valueStride
                    for d in c..<vd { acc[d] += p[j] * v[d] }
                }
            }
        }
    }

    /// Decode-sized calls (fewer than four rows per KV head): one task per (batch, head, query) row,
    /// which spreads a single token's heads over the threads; tiles would leave threads idle.
    static func forwardByRows(
        _ shape: AttentionShape, _ scale: Float, _ masking: AttentionMasking, _ keyMask: UnsafeBufferPointer<UInt8>?,
        _ query: UnsafeBufferPointer<Float>, _ key: UnsafeBufferPointer<Float>, _ value: UnsafeBufferPointer<Float>,
        _ output: UnsafeMutableBufferPointer<Float>, _ logSumExp: UnsafeMutableBufferPointer<Float>?, _ pool: ThreadPool
    ) {
        let q = query.baseAddress!, o = output.baseAddress!
        let k = key.baseAddress, v = value.baseAddress
        let mask = keyMask?.baseAddress, lse = logSumExp?.baseAddress
        pool.parallelFor(shape.rowCount) { range in
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
        _ outputCount: Int, _ lseCount: Int?, kernel: StaticString, allowsWindows: Bool = false
    ) {
        shape.validate(kernel: kernel)
        switch masking {
        case .bidirectional: break
        case .causal(let offset):
            kernelRequire(offset >= 0, "causal queryOffset must be non-negative, got \(offset)", kernel: kernel)
        case .slidingWindow(let offset, let window):
            kernelRequire(allowsWindows, "sliding-window masking is implemented by forwardHalfPrecision only", kernel: kernel)
            kernelRequire(offset >= 0, "causal queryOffset must be non-negative, got \(offset)", kernel: kernel)
            kernelRequire(window >= 1, "a sliding window must hold at least one key, got \(window)", kernel: kernel)
        }
        requireCount(query.count, atLeast: shape.queryExtent, "query", kernel: kernel)
        requireCount(key.count, atLeast: shape.keyExtent, "key", kernel: kernel)
        requireCount(value.count, atLeast: shape.valueExtent, "value", kernel: kernel)
        requireCount(outputCount, atLeast: shape.outputExtent, "output", kernel: kernel)
        if let lseCount { requireCount(lseCount, atLeast: shape.rowCount, "logSumExp", kernel: kernel) }
        if let keyMask { requireCount(keyMask.count, atLeast: shape.batchCount * shape.keyCount, "keyMask", kernel: kernel) }
    }
}
