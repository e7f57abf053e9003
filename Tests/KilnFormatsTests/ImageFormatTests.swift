import Foundation
import KilnFormats
import KilnTestSupport
import Testing

@Suite struct IDXTests {
    private func idx(_ type: UInt8, _ dims: [UInt32], _ payload: [UInt8]) -> Data {
        var bytes: [UInt8] = [0, 0, type, UInt8(dims.count)]
        for d in dims { bytes += [UInt8(d >> 24), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
        return Data(bytes + payload)
    }

    @Test func readsDimensionsAndValues() throws {
        let array = try IDXArray(data: idx(0x08, [2, 3], [1, 2, 3, 4, 5, 6]))
        #expect(array.dimensions == [2, 3] && array.values == [1, 2, 3, 4, 5, 6])
    }

    @Test func refusesBadHeaders() {
        #expect(throws: IDXArray.Failure(description: "not an IDX file (header must start with two zero bytes)")) {
            try IDXArray(data: Data([1, 0, 8, 1, 0, 0, 0, 0]))
        }
        #expect(throws: IDXArray.Failure(description: "IDX value type 0x0d is not unsigned bytes (0x08)")) {
            try IDXArray(data: idx(0x0d, [1], [0, 0, 0, 0]))
        }
        #expect(throws: IDXArray.Failure(description: "IDX dimensions 2×3 need 6 bytes, the file holds 5")) {
            try IDXArray(data: idx(0x08, [2, 3], [1, 2, 3, 4, 5]))
        }
        #expect(throws: IDXArray.Failure(description: "IDX header declares 3 dimensions but the file ends inside it")) {
            try IDXArray(data: Data([0, 0, 8, 3, 0, 0, 0, 1]))
        }
    }

    @Test func readsTheGzippedDatasetAndRefusesATruncatedCopy() throws {
        let path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
        guard FileManager.default.fileExists(atPath: path) else {
            if Fixtures.isCI { Issue.record("dataset-fashion-mnist is not installed") }
            return
        }
        let labels = try IDXArray(path: path)
        #expect(labels.dimensions == [10_000])
        // Exactly 1,000 test images per class.
        #expect((0..<10).allSatisfy { c in labels.values.filter { $0 == c }.count == 1000 })
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(throws: Gzip.Failure(description: "gzip data is truncated")) { try Gzip.decompress(whole.prefix(whole.count / 2)) }
        var flipped = whole
        flipped[100] ^= 0xff
        #expect(throws: (any Error).self) { try IDXArray(data: Gzip.decompress(flipped)) }
    }
}

@Suite struct PNGTests {
    @Test func roundTripsPixelsAndText() throws {
        var rng = SeededGenerator(seed: 3)
        let width = 37, height = 11
        let pixels = (0..<(width * height)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let png = try PNGImage.encodeGray(width: width, height: height, pixels: pixels,
                                          text: [("parameters", "model: vae, seed: 4"), ("Software", "Kiln")])
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
        let decoded = try PNGImage.decodeGray(png)
        #expect(decoded.width == width && decoded.height == height && decoded.pixels == pixels)
        #expect(PNGImage.textChunks(png) == ["parameters": "model: vae, seed: 4", "Software": "Kiln"])
    }

    @Test func refusesImpossibleImages() {
        #expect(throws: PNGImage.Failure.self) { try PNGImage.encodeGray(width: 0, height: 3, pixels: []) }
        #expect(throws: PNGImage.Failure.self) { try PNGImage.encodeGray(width: 2, height: 2, pixels: [1, 2, 3]) }
        #expect(throws: PNGImage.Failure.self) { try PNGImage.encodeGray(width: 1, height: 1, pixels: [0], text: [("", "x")]) }
        #expect(throws: PNGImage.Failure.self) { try PNGImage.decodeGray(Data("not a png".utf8)) }
    }
}

@Suite struct SHA256Tests {
    @Test func knownDigests() {
        // FIPS 180-4 examples.
        #expect(SHA256Digest.hex(of: Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Digest.hex(of: Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Digest.hex(of: Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}
