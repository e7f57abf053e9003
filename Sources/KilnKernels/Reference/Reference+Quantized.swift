extension Reference {
    /// Decodes `type` blocks into f32 from the GGUF byte layout, in plain Swift.
    public static func dequantize(_ type: QuantizationType, bytes: [UInt8]) -> [Float] {
        var out: [Float] = []
        let blockBytes = type.blockBytes
        for start in stride(from: 0, to: bytes.count - blockBytes + 1, by: blockBytes) {
            let d = half(bytes, start)
            switch type {
            case .q4_0:
                let low = (0..<16).map { d * Float(Int(bytes[start + 2 + $0] & 0x0F) - 8) }
                let high = (0..<16).map { d * Float(Int(bytes[start + 2 + $0] >> 4) - 8) }
                out += low + high
            case .q4_1:
                let m = half(bytes, start + 2)
                out += (0..<16).map { d * Float(bytes[start + 4 + $0] & 0x0F) + m }
                out += (0..<16).map { d * Float(bytes[start + 4 + $0] >> 4) + m }
            case .q8_0:
                out += (0..<32).map { d * Float(Int8(bitPattern: bytes[start + 2 + $0])) }
            default:
                preconditionFailure("Reference.dequantize: \(type) is not covered yet")
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

    /// The quantized dot product in llama.cpp's CPU arithmetic, step by step in scalar Swift: per
    /// block, lane j (of 8) adds d_w·d_a · Σ q_w·q_a over elements 4j…4j+3 with one FMA; the lanes
    /// are summed pairwise ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)); Q4_1 adds its Σ m·s, itself a chain
    /// of FMAs, last. Q4_0, which llama.cpp repacks into interleaved rows, instead adds each block's
    /// whole integer sum Σ (q_w − 8)·q_a with one FMA by d_w·d_a.
    public static func quantizedDot(_ type: QuantizationType, weightRow bytes: [UInt8], activations x: [Float]) -> Float {
        let (aq, ad, asum) = quantizeActivations(x)
        if type == .q4_0 {
            var total: Float = 0
            for b in 0..<(x.count / 32) {
                let start = b * type.blockBytes
                var integer = 0
                for j in 0..<16 {
                    integer += (Int(bytes[start + 2 + j] & 0x0F) - 8) * Int(aq[b * 32 + j])
                    integer += (Int(bytes[start + 2 + j] >> 4) - 8) * Int(aq[b * 32 + j + 16])
                }
                total = total.addingProduct(Float(integer), half(bytes, start) * ad[b])
            }
            return total
        }
        var lanes = [Float](repeating: 0, count: 8)
        var minimums: Float = 0
        let blockBytes = type.blockBytes
        for b in 0..<(x.count / 32) {
            let start = b * blockBytes
            var w = [Int](repeating: 0, count: 32)
            switch type {
            case .q4_0:
                for j in 0..<16 {
                    w[j] = Int(bytes[start + 2 + j] & 0x0F) - 8
                    w[j + 16] = Int(bytes[start + 2 + j] >> 4) - 8
                }
            case .q4_1:
                for j in 0..<16 {
                    w[j] = Int(bytes[start + 4 + j] & 0x0F)
                    w[j + 16] = Int(bytes[start + 4 + j] >> 4)
                }
                minimums = minimums.addingProduct(half(bytes, start + 2), asum[b])
            case .q8_0:
                for j in 0..<32 { w[j] = Int(Int8(bitPattern: bytes[start + 2 + j])) }
            default:
                preconditionFailure("Reference.quantizedDot: \(type) is not covered yet")
            }
            let scale = half(bytes, start) * ad[b]
            for lane in 0..<8 {
                let integer = (0..<4).reduce(0) { $0 + w[4 * lane + $1] * Int(aq[b * 32 + 4 * lane + $1]) }
                lanes[lane] = lanes[lane].addingProduct(scale, Float(integer))
            }
        }
        return ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7])) + minimums
    }

    static func half(_ bytes: [UInt8], _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8))
    }
}
