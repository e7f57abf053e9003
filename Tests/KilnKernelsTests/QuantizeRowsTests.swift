import CKilnKernels
import Foundation
import KilnKernels
import KilnTestSupport
import Testing

/// Quantization (floats into blocks) against ggml's own: rows of eight kinds (Gaussian, heavy
/// tails, half zeros, all positive, all negative, an all-zero super-block, outliers, a ramp of
/// ties) quantized by ggml_quantize_chunk and recorded by scripts/record-ggml-quantize. Kiln's
/// bytes must be the same, whatever the thread count.
@Suite struct QuantizeRowsTests {
    struct Record: Decodable {
        struct Entry: Decodable {
            let ggml_type: UInt32
            let file: String
            let bytes: Int
        }
        let rows: Int
        let columns: Int
        let input: String
        let types: [String: Entry]
    }

    static let record = try! JSONDecoder().decode(
        Record.self, from: Data(contentsOf: Fixtures.url("quants/ggml-quantize/ggml-quantize.json")))
    static let names = record.types.keys.sorted()

    static func input() throws -> [Float] {
        try Data(contentsOf: Fixtures.url("quants/ggml-quantize/\(record.input)")).withUnsafeBytes {
            Array($0.bindMemory(to: Float.self))
        }
    }

    @Test(arguments: names) func encodeMatchesGGML(name: String) throws {
        let r = Self.record, entry = r.types[name]!
        let x = try Self.input()
        let expected = [UInt8](try Data(contentsOf: Fixtures.url("quants/ggml-quantize/\(entry.file)")))
        #expect(QuantizedOps.canEncode(ggmlType: entry.ggml_type))
        for pool in [nil, ThreadPool(threadCount: 3)] {
            var out = [UInt8](repeating: 0xAA, count: entry.bytes)
            let written = x.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBytes {
                    QuantizedOps.encode(ggmlType: entry.ggml_type, rows: r.rows, columns: r.columns, from: src, into: $0, pool: pool)
                }
            }
            #expect(written == entry.bytes)
            let first = zip(out, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(first == nil, "\(name): first differing byte \(first ?? -1) (row \((first ?? 0) / max(1, entry.bytes / r.rows)))")
            pool?.shutdown()
        }
    }

    /// Decoding what was encoded gives back the rows within the type's precision: a check
    /// independent of ggml that the layout written is the layout read.
    @Test(arguments: names) func encodedRowsDecodeCloseToInput(name: String) throws {
        let r = Self.record, entry = r.types[name]!
        let x = try Self.input()
        var blocks = [UInt8](repeating: 0, count: entry.bytes)
        x.withUnsafeBufferPointer { src in
            blocks.withUnsafeMutableBytes {
                _ = QuantizedOps.encode(ggmlType: entry.ggml_type, rows: r.rows, columns: r.columns, from: src, into: $0)
            }
        }
        var decoded = [Float](repeating: 0, count: x.count)
        blocks.withUnsafeBytes { b in
            decoded.withUnsafeMutableBufferPointer {
                QuantizedOps.decode(ggmlType: entry.ggml_type, bytes: b, count: x.count, into: $0)
            }
        }
        // Relative RMS error per row for the Gaussian row: ~2^-bits of the type.
        let row = 0..<r.columns
        let err = row.map { Double(decoded[$0] - x[$0]) }.map { $0 * $0 }.reduce(0, +)
        let energy = row.map { Double(x[$0]) * Double(x[$0]) }.reduce(0, +)
        let relative = (err / energy).squareRoot()
        let bound: [String: Double] = ["F16": 1e-3, "BF16": 5e-3, "Q8_0": 0.01, "Q6_K": 0.03, "Q5_0": 0.06, "Q5_1": 0.06,
                                       "Q5_K": 0.06, "Q4_0": 0.12, "Q4_1": 0.12, "Q4_K": 0.12, "IQ4_NL": 0.12, "IQ4_XS": 0.12,
                                       "Q3_K": 0.25, "Q2_K": 0.45]
        #expect(relative < bound[name]!, "\(name): relative RMS error \(relative)")
    }

    /// The software f32 → f16 rounding against Swift's Float16 (round to nearest even) on random
    /// bit patterns of every magnitude, subnormals and overflow included; NaN as ggml writes it.
    @Test func halfRoundingMatchesFloat16() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<200_000 {
            let f = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            let ours = kiln_f32_to_f16_exact(f)
            if f.isNaN {
                #expect(ours & 0x7FFF == 0x7E00)
            } else if ours != Float16(f).bitPattern {
                Issue.record("\(f) (bits \(String(f.bitPattern, radix: 16))): \(ours) vs \(Float16(f).bitPattern)")
                return
            }
        }
        for f: Float in [65504, 65519.99, 65520, 1e-8, 2.98e-8, 5.96e-8, 6.1e-5, -0.0, .infinity, -.infinity] {
            #expect(kiln_f32_to_f16_exact(f) == Float16(f).bitPattern, "\(f)")
        }
    }
}
