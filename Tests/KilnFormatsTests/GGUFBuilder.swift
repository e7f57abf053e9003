/// Writes GGUF bytes for tests: a valid file by default, with hooks to corrupt any field.
struct GGUFBuilder {
    enum Value {
        case u8(UInt8), i8(Int8), u16(UInt16), i16(Int16), u32(UInt32), i32(Int32), u64(UInt64), i64(Int64)
        case f32(Float), f64(Double), bool(UInt8), string([UInt8]), array(type: UInt32, count: UInt64, payload: [UInt8])

        var type: UInt32 {
            switch self {
            case .u8: return 0
            case .i8: return 1
            case .u16: return 2
            case .i16: return 3
            case .u32: return 4
            case .i32: return 5
            case .f32: return 6
            case .bool: return 7
            case .string: return 8
            case .array: return 9
            case .u64: return 10
            case .i64: return 11
            case .f64: return 12
            }
        }

        var payload: [UInt8] {
            switch self {
            case .u8(let v): return [v]
            case .i8(let v): return [UInt8(bitPattern: v)]
            case .u16(let v): return le(v)
            case .i16(let v): return le(UInt16(bitPattern: v))
            case .u32(let v): return le(v)
            case .i32(let v): return le(UInt32(bitPattern: v))
            case .u64(let v): return le(v)
            case .i64(let v): return le(UInt64(bitPattern: v))
            case .f32(let v): return le(v.bitPattern)
            case .f64(let v): return le(v.bitPattern)
            case .bool(let v): return [v]
            case .string(let s): return le(UInt64(s.count)) + s
            case .array(let type, let count, let payload): return le(type) + le(count) + payload
            }
        }
    }

    struct Tensor {
        var name: String
        var shape: [UInt64]
        var type: UInt32
        var offset: UInt64
        var data: [UInt8]
    }

    var magic: UInt32 = 0x4655_4747
    var version: UInt32 = 3
    var metadata: [(String, Value)] = []
    var tensors: [Tensor] = []
    var alignment = 32
    var tensorCountOverride: UInt64?

    func bytes() -> [UInt8] {
        var out = le(magic) + le(version) + le(tensorCountOverride ?? UInt64(tensors.count)) + le(UInt64(metadata.count))
        for (key, value) in metadata {
            out += le(UInt64(key.utf8.count)) + Array(key.utf8) + le(value.type) + value.payload
        }
        for t in tensors {
            out += le(UInt64(t.name.utf8.count)) + Array(t.name.utf8) + le(UInt32(t.shape.count))
            for d in t.shape { out += le(d) }
            out += le(t.type) + le(t.offset)
        }
        while out.count % alignment != 0 { out.append(0) }
        let base = out.count
        for t in tensors {
            let start = base + Int(t.offset)
            if out.count < start { out += [UInt8](repeating: 0, count: start - out.count) }
            out.replaceSubrange(start..<min(out.count, start + t.data.count), with: t.data)
        }
        return out
    }

    static func strings(_ items: [String]) -> Value {
        .array(type: 8, count: UInt64(items.count), payload: items.flatMap { le(UInt64($0.utf8.count)) + Array($0.utf8) })
    }
}

func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}
