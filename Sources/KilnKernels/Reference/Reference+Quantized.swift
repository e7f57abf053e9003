extension Reference {
    /// One block's weights as integers with their scales, read from the GGUF byte layout in plain
    /// Swift: weight e is `d · scale[e / span] · ints[e] − dmin · mins[e / span]` (Q4_1/Q5_1: `d · q + m`).
    struct DecodedBlock {
        var ints: [Int]
        var scales: [Int]  // per `span` weights (1 for the legacy types)
        var mins: [Int]    // per `span` weights, 0 without mins
        var span: Int
        var d: Float
        var dmin: Float = 0
        var m: Float = 0   // Q4_1 / Q5_1's per-block minimum
    }

    static let iq4Values = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    static func decode(_ type: QuantizationType, _ b: ArraySlice<UInt8>) -> DecodedBlock {
        let s = b.startIndex
        func byte(_ i: Int) -> Int { Int(b[s + i]) }
        func nibbles(_ at: Int) -> [Int] { (0..<16).map { byte(at + $0) & 15 } + (0..<16).map { byte(at + $0) >> 4 } }
        func fifthBits(_ at: Int) -> [Int] { (0..<32).map { (byte(at + $0 / 8) >> ($0 % 8)) & 1 } }
        func kScaleMin(_ j: Int) -> (Int, Int) {
            j < 4 ? (byte(4 + j) & 63, byte(8 + j) & 63)
                  : ((byte(8 + j) & 15) | ((byte(j) >> 6) << 4), (byte(8 + j) >> 4) | ((byte(4 + j) >> 6) << 4))
        }
        switch type {
        case .q4_0: return DecodedBlock(ints: nibbles(2).map { $0 - 8 }, scales: [1], mins: [0], span: 32, d: half(b, s))
        case .q4_1: return DecodedBlock(ints: nibbles(4), scales: [1], mins: [0], span: 32, d: half(b, s), m: half(b, s + 2))
        case .q5_0:
            let q = zip(nibbles(6), fifthBits(2)).map { $0 + 16 * $1 - 16 }
            return DecodedBlock(ints: q, scales: [1], mins: [0], span: 32, d: half(b, s))
        case .q5_1:
            let q = zip(nibbles(8), fifthBits(4)).map { $0 + 16 * $1 }
            return DecodedBlock(ints: q, scales: [1], mins: [0], span: 32, d: half(b, s), m: half(b, s + 2))
        case .q8_0: return DecodedBlock(ints: (0..<32).map { Int(Int8(bitPattern: b[s + 2 + $0])) }, scales: [1], mins: [0], span: 32, d: half(b, s))
        case .iq4_nl: return DecodedBlock(ints: nibbles(2).map { iq4Values[$0] }, scales: [1], mins: [0], span: 32, d: half(b, s))
        case .q2_K:
            let q = (0..<256).map { e in (byte(16 + 32 * (e / 128) + e % 32) >> (2 * ((e % 128) / 32))) & 3 }
            return DecodedBlock(ints: q, scales: (0..<16).map { byte($0) & 15 }, mins: (0..<16).map { byte($0) >> 4 }, span: 16,
                                d: half(b, s + 80), dmin: half(b, s + 82))
        case .q3_K:
            let q = (0..<256).map { e -> Int in
                let low = (byte(32 + 32 * (e / 128) + e % 32) >> (2 * ((e % 128) / 32))) & 3
                let high = (byte(e % 32) >> (e / 32)) & 1
                return low - (high == 1 ? 0 : 4)
            }
            // 16 six-bit scales: low 4 bits from bytes 0…7, high 2 bits from bytes 8…11.
            let scales = (0..<16).map { i -> Int in
                let low = i < 8 ? byte(96 + i) & 15 : byte(96 + i - 8) >> 4
                let high = (byte(96 + 8 + i % 4) >> (2 * (i / 4))) & 3
                return (low | high << 4) - 32
            }
            return DecodedBlock(ints: q, scales: scales, mins: Array(repeating: 0, count: 16), span: 16, d: half(b, s + 108))
        case .q4_K, .q5_K:
            let qs = type == .q4_K ? 16 : 48
            let q = (0..<256).map { e -> Int in
                let v = byte(qs + 32 * (e / 64) + e % 32) >> (4 * ((e % 64) / 32)) & 15
                return type == .q4_K ? v : v + 16 * ((byte(16 + e % 32) >> (e / 32)) & 1)
            }
            let pairs = (0..<8).map(kScaleMin)
            return DecodedBlock(ints: q, scales: pairs.map(\.0), mins: pairs.map(\.1), span: 32, d: half(b, s), dmin: half(b, s + 2))
        case .q6_K:
            let q = (0..<256).map { e -> Int in
                let h = e / 128, i = e % 128, l = i % 32, quarter = i / 32
                let low = byte(64 * h + l + (quarter % 2) * 32) >> (4 * (quarter / 2)) & 15
                let high = (byte(128 + 32 * h + l) >> (2 * quarter)) & 3
                return (low | high << 4) - 32
            }
            return DecodedBlock(ints: q, scales: (0..<16).map { Int(Int8(bitPattern: b[s + 192 + $0])) },
                                mins: Array(repeating: 0, count: 16), span: 16, d: half(b, s + 208))
        default:  // IQ4_XS
            let high = byte(2) | byte(3) << 8
            let q = (0..<8).flatMap { ib in nibbles(8 + 16 * ib).map { iq4Values[$0] } }
            let scales = (0..<8).map { ib in ((byte(4 + ib / 2) >> (4 * (ib % 2))) & 15 | ((high >> (2 * ib)) & 3) << 4) - 32 }
            return DecodedBlock(ints: q, scales: scales, mins: Array(repeating: 0, count: 8), span: 32, d: half(b, s))
        }
    }

    /// Decodes `type` blocks into f32 from the GGUF byte layout, in plain Swift, multiplying out in
    /// ggml's dequantize_row_* order.
    public static func dequantize(_ type: QuantizationType, bytes: [UInt8]) -> [Float] {
        if type == .f16 { return stride(from: 0, to: bytes.count - 1, by: 2).map { half(bytes, $0) } }
        if type == .bf16 { return stride(from: 0, to: bytes.count - 1, by: 2).map { bfloat(bytes, $0) } }
        var out: [Float] = []
        for start in stride(from: 0, to: bytes.count - type.blockBytes + 1, by: type.blockBytes) {
            let k = decode(type, bytes[start..<(start + type.blockBytes)])
            for (e, q) in k.ints.enumerated() {
                let scale = k.scales[e / k.span], minimum = k.mins[e / k.span]
                switch type {
                // ggml's compiled dequantization fuses the multiply-add of a minimum.
                case .q4_1, .q5_1: out.append(k.m.addingProduct(Float(q), k.d))
                case .q2_K, .q4_K, .q5_K: out.append((-(k.dmin * Float(minimum))).addingProduct(k.d * Float(scale), Float(q)))
                case .q3_K, .q6_K, .iq4_xs: out.append(k.d * Float(scale) * Float(q))
                case .iq4_nl: out.append(k.d * Float(q))
                default: out.append(Float(q) * k.d)
                }
            }
        }
        return out
    }

    /// llama.cpp's activation quantization (per 32: d = max|x|/127, q = round-half-even(x·127/max|x|)),
    /// returning q and d rounded through f16 as stored.
    public static func quantizeActivations(_ x: [Float]) -> (values: [Int8], scales: [Float], sums: [Float]) {
        var values: [Int8] = [], scales: [Float] = [], sums: [Float] = []
        for start in stride(from: 0, to: x.count, by: 32) {
            let block = x[start..<(start + 32)]
            let amax = block.map { abs($0) }.max() ?? 0
            let d = amax / 127
            let id: Float = amax != 0 ? 127 / amax : 0
            let q = block.map { Int8(($0 * id).rounded(.toNearestOrEven)) }
            values += q
            scales.append(Float(Float16(d)))
            sums.append(Float(Float16(d * Float(q.reduce(0) { $0 + Int($1) }))))
        }
        return (values, scales, sums)
    }

    /// ggml's q8_K quantization (per 256: the value of largest magnitude m, q = round(−127·x/m)
    /// capped at 127, d = 1/(−127/m), sums of each 16 q).
    public static func quantizeSuperBlocks(_ x: [Float]) -> (values: [Int], scales: [Float], sums: [Int]) {
        var values: [Int] = [], scales: [Float] = [], sums: [Int] = []
        for start in stride(from: 0, to: x.count, by: 256) {
            let block = Array(x[start..<(start + 256)])
            var max: Float = 0, amax: Float = 0
            for v in block where abs(v) > amax { amax = abs(v); max = v }
            guard amax != 0 else {
                values += Array(repeating: 0, count: 256); scales.append(0); sums += Array(repeating: 0, count: 16)
                continue
            }
            let iscale = -127 / max
            let q = block.map { Swift.min(127, Int((iscale * $0).rounded(.toNearestOrEven))) }
            values += q
            sums += (0..<16).map { g in q[(16 * g)..<(16 * g + 16)].reduce(0, +) }
            scales.append(1 / iscale)
        }
        return (values, scales, sums)
    }

    /// The quantized dot product in llama.cpp's CPU arithmetic, step by step in scalar Swift, as the
    /// row `tokenIndex` of a product with `tokenCount` tokens computes it:
    ///  - vec_dot types (Q4_1, Q5_0, Q5_1, Q8_0; Q3_K, Q5_K, Q6_K, IQ4_XS below 8 tokens): per block,
    ///    lane j (of 8) takes the scaled integer products of elements 4j…4j+3 of every 32, is
    ///    multiplied by d_w·d_a and added with one FMA; lanes are summed pairwise
    ///    ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)); Q4_1/Q5_1 add Σ m·s and Q5_K −d_a·dmin·Σ mins·sums,
    ///    each its own FMA chain, last. Q6_K's offset 32 leaves each lane through its own sums.
    ///  - repacked types (Q4_0, IQ4_NL, Q4_K, Q2_K): one FMA of each span's integer sum by d_w·d_a
    ///    (a block; for K-quants multiplied in groups of four tokens, 64 or 128 weights), minus the
    ///    mins' chain.
    ///  - the tiled kernel (Q3_K, Q5_K, Q6_K, IQ4_XS at 8 tokens or more): per super-block
    ///    (Σ·d_w − dmin·Σ mins·sums) with one FMA, then one FMA by d_a into the total.
    /// `matrixRows`, the weight matrix's row count, matters to F16 and BF16 only: llama.cpp batches
    /// them through tinyBLAS when it is a multiple of 4.
    public static func quantizedDot(_ type: QuantizationType, weightRow bytes: [UInt8], activations x: [Float],
                                    tokenIndex: Int = 0, tokenCount: Int = 1, matrixRows: Int = 4) -> Float {
        if type == .f16 || type == .bf16 {
            return halfPrecisionDot(type, weightRow: bytes, activations: x, batched: tokenCount >= 2 && matrixRows % 4 == 0)
        }
        let n = type.blockElements
        let blocks = (0..<(x.count / n)).map { decode(type, bytes[($0 * type.blockBytes)..<(($0 + 1) * type.blockBytes)]) }
        let repacked: Set<QuantizationType> = [.q4_0, .iq4_nl, .q4_K, .q2_K]
        if n == 32 {
            let (aq, ad, asum) = quantizeActivations(x)
            if repacked.contains(type) {
                var total: Float = 0
                for (b, k) in blocks.enumerated() {
                    let integer = (0..<32).reduce(0) { $0 + k.ints[$1] * Int(aq[32 * b + $1]) }
                    total = total.addingProduct(Float(integer), k.d * ad[b])
                }
                return total
            }
            var lanes = [Float](repeating: 0, count: 8), minimums: Float = 0
            for (b, k) in blocks.enumerated() {
                for lane in 0..<8 {
                    let integer = (0..<4).reduce(0) { $0 + k.ints[4 * lane + $1] * Int(aq[32 * b + 4 * lane + $1]) }
                    lanes[lane] = lanes[lane].addingProduct(k.d * ad[b], Float(integer))
                }
                if type == .q4_1 || type == .q5_1 { minimums = minimums.addingProduct(k.m, asum[b]) }
            }
            return pairwise(lanes) + minimums
        }
        let (aq, ad, asum) = quantizeSuperBlocks(x)
        func scaled(_ k: DecodedBlock, _ b: Int, _ e: Int) -> Int { k.scales[e / k.span] * k.ints[e] * aq[256 * b + e] }
        func minSum(_ k: DecodedBlock, _ b: Int, groups: Range<Int>) -> Int {
            groups.reduce(0) { $0 + k.mins[16 * $1 / k.span] * asum[16 * b + $1] }
        }
        if repacked.contains(type) {
            let grouped = tokenIndex < tokenCount - tokenCount % 4
            let span = grouped ? (type == .q4_K ? 64 : 128) : 256
            var total: Float = 0, minimums: Float = 0
            for (b, k) in blocks.enumerated() {
                for s0 in stride(from: 0, to: 256, by: span) {
                    let integer = (s0..<(s0 + span)).reduce(0) { $0 + scaled(k, b, $1) }
                    total = total.addingProduct(Float(integer), k.d * ad[b])
                    minimums = minimums.addingProduct(Float(minSum(k, b, groups: (s0 / 16)..<((s0 + span) / 16))), k.dmin * ad[b])
                }
            }
            return total - minimums
        }
        if tokenCount >= 8 {
            var total: Float = 0
            for (b, k) in blocks.enumerated() {
                var result = Float((0..<256).reduce(0) { $0 + scaled(k, b, $1) }) * k.d
                if type == .q5_K { result = result.addingProduct(-k.dmin, Float(minSum(k, b, groups: 0..<16))) }
                total = total.addingProduct(result, ad[b])
            }
            return total
        }
        var lanes = [Float](repeating: 0, count: 8), minimums: Float = 0
        for (b, k) in blocks.enumerated() {
            for lane in 0..<8 {
                var integer = 0
                for chunk in 0..<8 { for i in 0..<4 { integer += scaled(k, b, 32 * chunk + 4 * lane + i) } }
                if type == .q6_K {
                    // The decoded quants carry −32; ggml adds it back per element and removes it per lane.
                    for chunk in 0..<8 { for i in 0..<4 { integer += 32 * k.scales[(32 * chunk + 4 * lane + i) / 16] * aq[256 * b + 32 * chunk + 4 * lane + i] } }
                    integer -= 32 * (asum[16 * b + 2 * lane] * k.scales[2 * lane] + asum[16 * b + 2 * lane + 1] * k.scales[2 * lane + 1])
                }
                lanes[lane] = lanes[lane].addingProduct(ad[b] * k.d, Float(integer))
            }
            if type == .q5_K { minimums = minimums.addingProduct(-ad[b] * k.dmin, Float(minSum(k, b, groups: 0..<16))) }
        }
        return pairwise(lanes) + minimums
    }

    /// F16 / BF16 rows in llama.cpp's AVX-512 order: activations rounded to the weights' type
    /// (bf16 with denormals as zero up to the last multiple of 32); one token through
    /// ggml_vec_dot (F16: four 16-lane FMA accumulators over steps of 64, folded (0+2)+(1+3);
    /// BF16: two dpbf16 accumulators added in double), a batch through tinyBLAS (one 16-lane
    /// accumulator, an FMA per 16 or a dpbf16 per 32); each accumulator reduced as GCC's
    /// _mm512_reduce_add_ps; leftovers past the last step of 64 added in double.
    static func halfPrecisionDot(_ type: QuantizationType, weightRow bytes: [UInt8], activations x: [Float], batched: Bool) -> Float {
        let n = x.count, bf16 = type == .bf16
        let w: [Float] = bf16 ? (0..<n).map { bfloat(bytes, 2 * $0) } : (0..<n).map { half(bytes, 2 * $0) }
        let a: [Float] = bf16 ? (0..<n).map { roundToBFloat(x[$0], flushDenormals: $0 < n - n % 32) } : x.map { Float(Float16($0)) }
        func reduce(_ v: [Float]) -> Float {
            let t = (0..<8).map { v[$0 + 8] + v[$0] }, u = (0..<4).map { t[$0 + 4] + t[$0] }
            return (u[0] + u[2]) + (u[1] + u[3])
        }
        func flush(_ f: Float) -> Float { f.isSubnormal ? Float(sign: f.sign, exponent: 0, significand: 0) : f }
        // dpbf16 on one lane: the odd pair's product, then the even pair's, each rounded.
        func dp(_ acc: Float, _ e: Int) -> Float { flush(flush(acc + flush(w[e + 1]) * flush(a[e + 1])) + flush(w[e]) * flush(a[e])) }
        if batched && n % (bf16 ? 32 : 16) == 0 {
            var acc = [Float](repeating: 0, count: 16)
            for l in stride(from: 0, to: n, by: bf16 ? 32 : 16) {
                for i in 0..<16 { acc[i] = bf16 ? dp(acc[i], l + 2 * i) : acc[i].addingProduct(w[l + i], a[l + i]) }
            }
            return reduce(acc)
        }
        let np = n - n % 64
        var sum: Double
        if bf16 {
            var c1 = [Float](repeating: 0, count: 16), c2 = c1
            for i in stride(from: 0, to: np, by: 64) {
                for l in 0..<16 { c1[l] = dp(c1[l], i + 2 * l); c2[l] = dp(c2[l], i + 32 + 2 * l) }
            }
            sum = Double(reduce(c1))
            sum += Double(reduce(c2))
        } else {
            var s = [[Float]](repeating: [Float](repeating: 0, count: 16), count: 4)
            for i in stride(from: 0, to: np, by: 64) {
                for j in 0..<4 { for l in 0..<16 { s[j][l] = s[j][l].addingProduct(w[i + 16 * j + l], a[i + 16 * j + l]) } }
            }
            sum = Double(reduce((0..<16).map { (s[0][$0] + s[2][$0]) + (s[1][$0] + s[3][$0]) }))
        }
        for i in np..<n { sum += Double(w[i] * a[i]) }
        return Float(sum)
    }

    static func roundToBFloat(_ f: Float, flushDenormals: Bool) -> Float {
        var u = f.bitPattern
        if f.isNaN { return Float(bitPattern: ((u >> 16) | 64) << 16) }
        if flushDenormals && f.isSubnormal { u &= 0x8000_0000 }
        return Float(bitPattern: ((u &+ (0x7FFF + ((u >> 16) & 1))) >> 16) << 16)
    }

    static func bfloat(_ bytes: [UInt8], _ offset: Int) -> Float {
        Float(bitPattern: (UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8) << 16)
    }

    static func pairwise(_ l: [Float]) -> Float { ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])) }

    static func half(_ bytes: ArraySlice<UInt8>, _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8))
    }

    static func half(_ bytes: [UInt8], _ offset: Int) -> Float { half(bytes[...], offset) }
}
