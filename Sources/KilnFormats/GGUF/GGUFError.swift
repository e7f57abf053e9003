/// Why a GGUF file was refused. Every case names the field and, where it helps, the byte offset.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    case notGGUF(magic: UInt32)
    case unsupportedVersion(UInt32)
    case truncated(field: String, offset: Int, needed: Int, available: Int)
    case invalid(field: String, reason: String)
    case unsupportedTensorType(tensor: String, type: GGMLType)
    case missingKey(String)
    case wrongType(key: String, expected: String, found: String)

    public var description: String {
        switch self {
        case .notGGUF(let magic):
            return "not a GGUF file: magic is 0x\(String(magic, radix: 16)), expected 0x46554747 (\"GGUF\")"
        case .unsupportedVersion(let v):
            return "GGUF version \(v) is not supported (versions 2 and 3 are)"
        case .truncated(let field, let offset, let needed, let available):
            return "truncated GGUF: \(field) at byte \(offset) needs \(needed) bytes, \(available) remain"
        case .invalid(let field, let reason):
            return "invalid GGUF \(field): \(reason)"
        case .unsupportedTensorType(let tensor, let type):
            return "tensor \(tensor) has type \(type), which Kiln cannot read"
        case .missingKey(let key):
            return "GGUF metadata has no \(key)"
        case .wrongType(let key, let expected, let found):
            return "GGUF metadata \(key) is \(found), expected \(expected)"
        }
    }
}
