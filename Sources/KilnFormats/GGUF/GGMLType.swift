import CKilnKernels

/// Tensor element types as ggml numbers them, with their block geometry.
public struct GGMLType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let f32 = GGMLType(rawValue: 0)
    public static let f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2)
    public static let q4_1 = GGMLType(rawValue: 3)
    public static let q5_0 = GGMLType(rawValue: 6)
    public static let q5_1 = GGMLType(rawValue: 7)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q8_1 = GGMLType(rawValue: 9)
    public static let q2_K = GGMLType(rawValue: 10)
    public static let q3_K = GGMLType(rawValue: 11)
    public static let q4_K = GGMLType(rawValue: 12)
    public static let q5_K = GGMLType(rawValue: 13)
    public static let q6_K = GGMLType(rawValue: 14)
    public static let q8_K = GGMLType(rawValue: 15)
    public static let iq4_nl = GGMLType(rawValue: 20)
    public static let iq4_xs = GGMLType(rawValue: 23)
    public static let i8 = GGMLType(rawValue: 24)
    public static let i16 = GGMLType(rawValue: 25)
    public static let i32 = GGMLType(rawValue: 26)
    public static let i64 = GGMLType(rawValue: 27)
    public static let f64 = GGMLType(rawValue: 28)
    public static let bf16 = GGMLType(rawValue: 30)

    /// (elements per block, bytes per block) for the types whose layout Kiln knows; nil otherwise.
    /// Read from the kernels' type table (`kiln_quant_type_info`), the one list of ggml types.
    public var blockGeometry: (elements: Int, bytes: Int)? {
        guard rawValue <= UInt32(Int32.max), let info = kiln_quant_type_info(Int32(rawValue))?.pointee else { return nil }
        return (Int(info.blockElements), Int(info.blockBytes))
    }

    /// Whether Kiln can dequantize this type and multiply by it.
    public var hasKernels: Bool {
        guard rawValue <= UInt32(Int32.max), let info = kiln_quant_type_info(Int32(rawValue))?.pointee else { return false }
        return info.hasKernels != 0
    }

    public var description: String {
        guard rawValue <= UInt32(Int32.max), let info = kiln_quant_type_info(Int32(rawValue))?.pointee else { return "\(rawValue) (unknown to ggml)" }
        return String(cString: info.name)
    }
}
