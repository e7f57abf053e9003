/// Bounds-checked little-endian reads over the file, each naming the field it reads.
struct Cursor {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var remaining: Int { bytes.count - offset }

    mutating func take(_ count: Int, _ field: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else {
            throw GGUFError.truncated(field: field(), offset: offset, needed: count, available: remaining)
        }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return slice
    }

    mutating func scalar<T: FixedWidthInteger>(_ type: T.Type, _ field: @autoclosure () -> String) throws -> T {
        let raw = try take(MemoryLayout<T>.size, field())
        return T(littleEndian: raw.loadUnaligned(as: T.self))
    }

    mutating func u32(_ field: @autoclosure () -> String) throws -> UInt32 { try scalar(UInt32.self, field()) }
    mutating func u64(_ field: @autoclosure () -> String) throws -> UInt64 { try scalar(UInt64.self, field()) }

    /// A u64 count whose elements take at least `minimumElementBytes` each: refused when the rest
    /// of the file could not hold that many, so no allocation is ever sized by a corrupt count.
    mutating func count(_ field: @autoclosure () -> String, minimumElementBytes: Int) throws -> Int {
        let value = try u64(field())
        guard value <= UInt64(remaining / max(1, minimumElementBytes)) else {
            throw GGUFError.invalid(field: field(), reason: "\(value) entries cannot fit in the \(remaining) bytes left")
        }
        return Int(value)
    }

    mutating func string(_ field: @autoclosure () -> String) throws -> String {
        let length = try u64("length of \(field())")
        guard length <= UInt64(remaining) else {
            throw GGUFError.truncated(field: field(), offset: offset, needed: Int(clamping: length), available: remaining)
        }
        let raw = try take(Int(length), field())
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw GGUFError.invalid(field: field(), reason: "is not valid UTF-8")
        }
        return text
    }

    mutating func value(type: UInt32, field: String, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try scalar(UInt8.self, field))
        case 1: return .int8(try scalar(Int8.self, field))
        case 2: return .uint16(try scalar(UInt16.self, field))
        case 3: return .int16(try scalar(Int16.self, field))
        case 4: return .uint32(try scalar(UInt32.self, field))
        case 5: return .int32(try scalar(Int32.self, field))
        case 6: return .float32(Float(bitPattern: try scalar(UInt32.self, field)))
        case 7: return .bool(try boolean(field))
        case 8: return .string(try string(field))
        case 9: return .array(try array(field: field, depth: depth + 1))
        case 10: return .uint64(try scalar(UInt64.self, field))
        case 11: return .int64(try scalar(Int64.self, field))
        case 12: return .float64(Double(bitPattern: try scalar(UInt64.self, field)))
        default: throw GGUFError.invalid(field: field, reason: "unknown value type \(type)")
        }
    }

    mutating func boolean(_ field: @autoclosure () -> String) throws -> Bool {
        let raw = try scalar(UInt8.self, field())
        guard raw <= 1 else { throw GGUFError.invalid(field: field(), reason: "bool byte is \(raw)") }
        return raw == 1
    }

    mutating func array(field: String, depth: Int) throws -> GGUFArray {
        guard depth <= GGUFFile.maximumArrayDepth else {
            throw GGUFError.invalid(field: field, reason: "arrays nested deeper than \(GGUFFile.maximumArrayDepth)")
        }
        let elementType = try u32("element type of \(field)")
        let elementBytes: Int
        switch elementType {
        case 0, 1, 7: elementBytes = 1
        case 2, 3: elementBytes = 2
        case 4, 5, 6: elementBytes = 4
        case 10, 11, 12, 8: elementBytes = 8  // a string is at least its u64 length
        case 9: elementBytes = 12             // a nested array is at least its type and count
        default: throw GGUFError.invalid(field: field, reason: "unknown array element type \(elementType)")
        }
        let n = try count("element count of \(field)", minimumElementBytes: elementBytes)
        func fixed<T: FixedWidthInteger>(_ type: T.Type) throws -> [T] {
            let raw = try take(n * MemoryLayout<T>.size, field)
            return (0..<n).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        }
        switch elementType {
        case 0: return .uint8(try fixed(UInt8.self))
        case 1: return .int8(try fixed(Int8.self))
        case 2: return .uint16(try fixed(UInt16.self))
        case 3: return .int16(try fixed(Int16.self))
        case 4: return .uint32(try fixed(UInt32.self))
        case 5: return .int32(try fixed(Int32.self))
        case 6: return .float32(try fixed(UInt32.self).map { Float(bitPattern: $0) })
        case 7: return .bool(try (0..<n).map { try boolean("\(field)[\($0)]") })
        case 8: return .string(try (0..<n).map { try string("\(field)[\($0)]") })
        case 10: return .uint64(try fixed(UInt64.self))
        case 11: return .int64(try fixed(Int64.self))
        case 12: return .float64(try fixed(UInt64.self).map { Double(bitPattern: $0) })
        default: return .array(try (0..<n).map { try array(field: "\(field)[\($0)]", depth: depth + 1) })
        }
    }
}
