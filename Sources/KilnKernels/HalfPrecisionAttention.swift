import Glibc

/// The order in which llama.cpp's CPU backend adds up attention products. It differs between a
/// call with several queries (tinyBLAS tiles: one 16-lane FMA chain per output) and a call with a
/// single query (`ggml_vec_dot_f16`: four 16-lane accumulators per 64 elements), and the last bits
/// of the logits follow it.
public enum HalfPrecisionSummation: Sendable, Equatable {
    case batch
    case single
}

extension Attention {
    /// Attention as llama.cpp evaluates it with an f16 KV cache and without flash attention, to the
    /// bit: queries rounded to f16; scores Q·Kᵀ summed in `summation` order, times `scale`; a
    /// softmax over the materialized row (e^x as `ggml_v_expf`, sums per 16 keys in Float, across
    /// them in Double); probabilities rounded to f16; then P·V in `summation` order. `key` and
    /// `value` must hold f16-representable values (a cache written through `roundToHalf`), so every
    /// product is exact and only the order of additions matters.
    ///
    /// With `softCap` c, each score s becomes c·tanh(s / c) before `scale` (Gemma 2's attention
    /// logit soft-capping, in ggml's steps). A sliding window masks the keys before it as
    /// llama.cpp's mask does — probability 0 at their own positions — so every sum keeps the
    /// lanes it has without the window, and the masked keys cost nothing.
    ///
    /// The fused `forward` keeps no score row and rounds nothing to f16; this form exists so that
    /// a model can reproduce llama.cpp token for token.
    public static func forwardHalfPrecision(
        shape: AttentionShape, scale: Float, softCap: Float? = nil, masking: AttentionMasking,
        summation: HalfPrecisionSummation,
        query: UnsafeBufferPointer<Float>, key: UnsafeBufferPointer<Float>, value: UnsafeBufferPointer<Float>,
        output: UnsafeMutableBufferPointer<Float>, pool: ThreadPool = .shared
    ) {
        validate(shape, masking, nil, query, key, value, output.count, nil, kernel: "forwardHalfPrecision", allowsWindows: true)
        if let softCap { kernelRequire(softCap.isFinite && softCap > 0, "softCap must be positive, got \(softCap)", kernel: "forwardHalfPrecision") }
        guard shape.rowCount > 0 else { return }
        let q = query.baseAddress!, o = output.baseAddress!
        let k = key.baseAddress, v = value.baseAddress
        let hd = shape.headDimension, vd = shape.valueDimension
        // Keys are processed in whole chunks of 64 (llama.cpp's window is padded to 256 with masked,
        // zero-probability keys, which change no sum).
        let paddedKeys = (shape.keyCount + 63) / 64 * 64
        let slots = HalfPrecisionOrder.valueSlots(summation, valueDimension: vd)
        let paddedValue = (vd + 15) / 16 * 16
        let scratchCount = hd + paddedKeys + slots * paddedValue + paddedValue
        pool.parallelFor(shape.rowCount) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: scratchCount) { scratch in
                let q16 = scratch.baseAddress!
                let probabilities = q16 + hd
                let partials = probabilities + paddedKeys
                let total = partials + slots * paddedValue
                for row in range {
                    let (batch, head, i) = split(row, shape)
                    let kvHead = head / shape.groupSize
                    // SAFETY: validate() checked every extent below against the buffers.
                    let qRow = q + batch * shape.queryBatchStride + i * shape.queryPositionStride + head * hd
                    VectorOps.roundToHalf(UnsafeBufferPointer(start: qRow, count: hd),
                                          into: UnsafeMutableBufferPointer(start: q16, count: hd), count: hd)
                    let keyLimit = masking.keyLimit(query: i, keyCount: shape.keyCount)
                    let outRow = o + batch * shape.outputBatchStride + i * shape.outputPositionStride + head * vd
                    guard keyLimit > 0, let k, let v else {
                        outRow.update(repeating: 0, count: vd)
                        continue
                    }
                    let keyBase = k + batch * shape.keyBatchStride + kvHead * hd
                    // Keys before the window get probability 0; work starts at the 16-key chunk
                    // holding the first visible key, so the softmax's chunks stay where they are.
                    let keyStart = min(masking.keyStart(query: i), keyLimit - 1)
                    let first = keyStart & ~15
                    for j in first..<keyStart { probabilities[j] = -.infinity }
                    for j in keyStart..<keyLimit {
                        var s = HalfPrecisionOrder.dot(q16, keyBase + j * shape.keyPositionStride, hd, summation)
                        if let softCap { s = tanhf(s * (1 / softCap)) * softCap }
                        probabilities[j] = s * scale
                    }
                    HalfPrecisionOrder.softmaxRoundedToHalf(probabilities + first, count: keyLimit - first)
                    let valueBase = v + batch * shape.valueBatchStride + kvHead * vd
                    HalfPrecisionOrder.weightedSum(probabilities + first, firstKey: first, count: keyLimit - first,
                                                   values: valueBase + first * shape.valuePositionStride,
                                                   stride: shape.valuePositionStride, dimension: vd, slots: slots,
                                                   partials: partials, paddedDimension: paddedValue, total: total)
                    outRow.update(from: total, count: vd)
                }
            }
        }
    }
}

/// The pieces of `forwardHalfPrecision`, each in llama.cpp's order of operations.
enum HalfPrecisionOrder {
    /// Partial sums per output of P·V: 16 lanes (tinyBLAS) or 64 (4 accumulators × 16 lanes).
    /// tinyBLAS needs the output count to be a multiple of 4, or ggml falls back to the dot.
    static func valueSlots(_ summation: HalfPrecisionSummation, valueDimension: Int) -> Int {
        summation == .batch && valueDimension % 4 == 0 ? 16 : 64
    }

    /// q·k over `count` floats: a tinyBLAS FMA chain per lane (batch; count a multiple of 16), or
    /// `ggml_vec_dot_f16` (four accumulators over 64-element steps, then the rest added in Double).
    @inline(__always)
    static func dot(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ count: Int, _ summation: HalfPrecisionSummation) -> Float {
        if summation == .batch && count % 16 == 0 {
            var acc = Vector16()
            var l = 0
            while l < count {
                acc = acc.addingProduct(q.load16(l), k.load16(l))
                l += 16
            }
            return horizontalSum(acc)
        }
        var a0 = Vector16(), a1 = Vector16(), a2 = Vector16(), a3 = Vector16()
        let whole = count & ~63
        var i = 0
        while i < whole {
            a0 = a0.addingProduct(q.load16(i), k.load16(i))
            a1 = a1.addingProduct(q.load16(i + 16), k.load16(i + 16))
            a2 = a2.addingProduct(q.load16(i + 32), k.load16(i + 32))
            a3 = a3.addingProduct(q.load16(i + 48), k.load16(i + 48))
            i += 64
        }
        var sum = Double(horizontalSum((a0 + a2) + (a1 + a3)))
        while i < count {
            sum += Double(q[i] * k[i])
            i += 1
        }
        return Float(sum)
    }

    /// Softmax of x[0..<count] in place as ggml's `soft_max`, each probability then rounded to f16
    /// (the type the P·V product reads). Entries up to the next multiple of 16 are set to 0.
    static func softmaxRoundedToHalf(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var maximum = -Float.infinity
        for j in 0..<count where x[j] > maximum { maximum = x[j] }
        let padded = (count + 15) / 16 * 16
        for j in count..<padded { x[j] = -.infinity }
        var sum = 0.0
        var j = 0
        while j < padded {
            let e = exp16(x.load16(j) - Vector16(repeating: maximum))
            x.store16(e, at: j)
            sum += Double(horizontalSum(e))
            j += 16
        }
        let inverse = Float(1.0 / sum)
        j = 0
        while j < padded {
            x.store16(x.load16(j) * inverse, at: j)
            j += 16
        }
        VectorOps.roundToHalf(UnsafeBufferPointer(start: x, count: padded),
                              into: UnsafeMutableBufferPointer(start: x, count: padded), count: padded)
    }

    /// total[d] = Σ_j p_j·v_j[d], vectorized over d: partial slot (firstKey + j) % slots collects
    /// key j in order (keys keep their lanes when the first ones are skipped), then the slots
    /// combine as the lanes of llama.cpp's accumulators do.
    static func weightedSum(
        _ p: UnsafePointer<Float>, firstKey: Int = 0, count: Int, values: UnsafePointer<Float>, stride: Int, dimension: Int, slots: Int,
        partials: UnsafeMutablePointer<Float>, paddedDimension: Int, total: UnsafeMutablePointer<Float>
    ) {
        partials.update(repeating: 0, count: slots * paddedDimension)
        let whole = dimension & ~15
        for j in 0..<count where p[j] != 0 {
            // A zero probability adds exactly nothing to any lane, so skipping it changes no bit.
            let slot = partials + ((firstKey + j) % slots) * paddedDimension
            let row = values + j * stride
            let pj = Vector16(repeating: p[j])
            var d = 0
            while d < whole {
                slot.store16(slot.load16(d).addingProduct(pj, row.load16(d)), at: d)
                d += 16
            }
            while d < dimension {
                slot[d] = slot[d].addingProduct(p[j], row[d])
                d += 1
            }
        }
        // Lane l of the final 16-lane register: its own slot (16 slots) or (s_l + s_l+32) + (s_l+16 + s_l+48).
        if slots == 64 {
            for l in 0..<16 {
                let a = partials + l * paddedDimension, b = partials + (l + 16) * paddedDimension
                let c = partials + (l + 32) * paddedDimension, e = partials + (l + 48) * paddedDimension
                var d = 0
                while d < paddedDimension {
                    a.store16((a.load16(d) + c.load16(d)) + (b.load16(d) + e.load16(d)), at: d)
                    d += 16
                }
            }
        }
        // _mm512_reduce_add_ps over the 16 lanes: halves, quarters, then (0+2) + (1+3).
        func lane(_ l: Int, _ d: Int) -> Vector16 { partials.load16(l * paddedDimension + d) }
        var d = 0
        while d < paddedDimension {
            let t0 = lane(0, d) + lane(8, d), t1 = lane(1, d) + lane(9, d), t2 = lane(2, d) + lane(10, d)
            let t3 = lane(3, d) + lane(11, d), t4 = lane(4, d) + lane(12, d), t5 = lane(5, d) + lane(13, d)
            let t6 = lane(6, d) + lane(14, d), t7 = lane(7, d) + lane(15, d)
            let f0 = t0 + t4, f1 = t1 + t5, f2 = t2 + t6, f3 = t3 + t7
            total.store16((f0 + f2) + (f1 + f3), at: d)
            d += 16
        }
    }
}
