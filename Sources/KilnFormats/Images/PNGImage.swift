import CKilnPNG
import Foundation

/// 8-bit grayscale PNG images through libpng's simplified API, with `tEXt` chunks (keyword and
/// Latin-1 text) placed after the header, where image tools look for generation parameters.
public enum PNGImage {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// PNG bytes of a width × height grayscale image (row-major pixels) with the given text chunks.
    public static func encodeGray(width: Int, height: Int, pixels: [UInt8], text: [(keyword: String, value: String)] = []) throws -> Data {
        guard width > 0, height > 0, width <= 1 << 16, height <= 1 << 16 else {
            throw Failure(description: "PNG size \(width)×\(height) is outside 1…65536")
        }
        guard pixels.count == width * height else {
            throw Failure(description: "\(pixels.count) pixels for a \(width)×\(height) image")
        }
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = png_uint_32(PNG_FORMAT_GRAY)
        var size: png_alloc_size_t = 0
        // First call measures, second writes.
        guard png_image_write_to_memory(&image, nil, &size, 0, pixels, png_int_32(width), nil) != 0 else {
            throw Failure(description: "libpng: \(message(&image))")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let ok = bytes.withUnsafeMutableBytes { out in
            png_image_write_to_memory(&image, out.baseAddress, &size, 0, pixels, png_int_32(width), nil)
        }
        guard ok != 0 else { throw Failure(description: "libpng: \(message(&image))") }
        bytes.removeSubrange(Int(size)...)
        // Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC) = 33 bytes.
        var chunks: [UInt8] = []
        for (keyword, value) in text {
            guard (1...79).contains(keyword.utf8.count), keyword.unicodeScalars.allSatisfy({ (32...126).contains($0.value) }) else {
                throw Failure(description: "PNG text keyword \"\(keyword)\" must be 1–79 printable Latin-1 characters")
            }
            guard let latin1 = value.data(using: .isoLatin1) else {
                throw Failure(description: "PNG text for \"\(keyword)\" is not Latin-1")
            }
            chunks += chunk(type: "tEXt", data: Array(keyword.utf8) + [0] + [UInt8](latin1))
        }
        bytes.insert(contentsOf: chunks, at: 33)
        return Data(bytes)
    }

    /// Decodes any PNG to 8-bit grayscale (libpng converts colour images).
    public static func decodeGray(_ data: Data) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        let begun = data.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard begun != 0 else { throw Failure(description: "not a readable PNG: \(message(&image))") }
        image.format = png_uint_32(PNG_FORMAT_GRAY)
        let width = Int(image.width), height = Int(image.height)
        var pixels = [UInt8](repeating: 0, count: width * height)
        let finished = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, png_int_32(width), nil) }
        guard finished != 0 else { throw Failure(description: "PNG data is corrupt: \(message(&image))") }
        return (width, height, pixels)
    }

    /// The `tEXt` chunks of a PNG, keyword → text, read straight from the chunk list.
    public static func textChunks(_ data: Data) -> [String: String] {
        let bytes = [UInt8](data)
        var result: [String: String] = [:]
        var offset = 8
        while offset + 12 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard offset + 12 + length <= bytes.count else { break }
            if type == "tEXt" {
                let body = bytes[(offset + 8)..<(offset + 8 + length)]
                if let zero = body.firstIndex(of: 0) {
                    let keyword = String(decoding: body[..<zero], as: UTF8.self)
                    result[keyword] = String(data: Data(body[(zero + 1)...]), encoding: .isoLatin1)
                }
            }
            offset += 12 + length
        }
        return result
    }

    private static func chunk(type: String, data: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        let n = UInt32(data.count)
        let crc = Gzip.crc32(typeBytes + data)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + typeBytes + data
            + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc & 0xff)]
    }

    private static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
