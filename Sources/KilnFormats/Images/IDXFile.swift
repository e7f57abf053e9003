import Foundation

/// An IDX array (the MNIST family's format): big-endian header `00 00 type ndim`, one u32 per
/// dimension, then the values in row-major order. Kiln reads unsigned-byte arrays (type 0x08),
/// plain or gzipped.
public struct IDXArray: Sendable, Equatable {
    public let dimensions: [Int]
    public let values: [UInt8]

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public init(path: String) throws {
        guard let raw = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "cannot read \(path)")
        }
        do {
            try self.init(data: Gzip.isCompressed(raw) ? Gzip.decompress(raw) : raw)
        } catch let error as Failure {
            throw Failure(description: "\(path): \(error.description)")
        } catch let error as Gzip.Failure {
            throw Failure(description: "\(path): \(error.description)")
        }
    }

    public init(data: Data) throws {
        let bytes = [UInt8](data)
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else {
            throw Failure(description: "not an IDX file (header must start with two zero bytes)")
        }
        guard bytes[2] == 0x08 else {
            throw Failure(description: String(format: "IDX value type 0x%02x is not unsigned bytes (0x08)", bytes[2]))
        }
        let rank = Int(bytes[3])
        guard rank >= 1, bytes.count >= 4 + 4 * rank else {
            throw Failure(description: "IDX header declares \(rank) dimensions but the file ends inside it")
        }
        var dims: [Int] = []
        var total = 1
        for d in 0..<rank {
            let o = 4 + 4 * d
            let size = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            dims.append(size)
            total = total.multipliedReportingOverflow(by: size).overflow ? Int.max : total * size
        }
        let payload = bytes.count - 4 - 4 * rank
        guard total == payload else {
            throw Failure(description: "IDX dimensions \(dims.map(String.init).joined(separator: "×")) need \(total) bytes, the file holds \(payload)")
        }
        dimensions = dims
        values = Array(bytes[(4 + 4 * rank)...])
    }
}
