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

    /// The quantized dot product as llama.cpp defines it, block by block, in Double:
    /// Σ_b d_w·d_a·Σ q_w·q_a (+ m·s for Q4_1), with q_w offset by −8 for Q4_0.
    public static func quantizedDot(_ type: QuantizationType, weightRow bytes: [UInt8], activations x: [Float]) -> Float {
        let (aq, ad, asum) = quantizeActivations(x)
        var total = 0.0
        let blockBytes = type.blockBytes
        for b in 0..<(x.count / 32) {
            let start = b * blockBytes
            let d = Double(half(bytes, start))
            var integer = 0
            switch type {
            case .q4_0:
                for j in 0..<16 {
                    integer += (Int(bytes[start + 2 + j] & 0x0F) - 8) * Int(aq[b * 32 + j])
                    integer += (Int(bytes[start + 2 + j] >> 4) - 8) * Int(aq[b * 32 + j + 16])
                }
                total += d * Double(ad[b]) * Double(integer)
            case .q4_1:
                for j in 0..<16 {
                    integer += Int(bytes[start + 4 + j] & 0x0F) * Int(aq[b * 32 + j])
                    integer += Int(bytes[start + 4 + j] >> 4) * Int(aq[b * 32 + j + 16])
                }
                total += d * Double(ad[b]) * Double(integer) + Double(half(bytes, start + 2)) * Double(asum[b])
            case .q8_0:
                for j in 0..<32 { integer += Int(Int8(bitPattern: bytes[start + 2 + j])) * Int(aq[b * 32 + j]) }
                total += d * Double(ad[b]) * Double(integer)
            }
        }
        return Float(total)
    }

    static func half(_ bytes: [UInt8], _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8))
    }
}
