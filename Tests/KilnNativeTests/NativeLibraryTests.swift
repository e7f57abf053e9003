import CKilnBLAS
import CKilnPNG
import Foundation
import Testing

/// The system libraries link and behave: libpng writes and reads back an 8-bit grayscale image.
@Suite struct NativeLibraryTests {
    @Test func libpngRoundTripsGrayscale() throws {
        let width = 5, height = 3
        let pixels: [UInt8] = (0..<(width * height)).map { UInt8($0 * 17) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).png").path
        defer { try? FileManager.default.removeItem(atPath: path) }

        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = UInt32(PNG_FORMAT_GRAY)
        let written = pixels.withUnsafeBufferPointer {
            png_image_write_to_file(&image, path, 0, $0.baseAddress, Int32(width), nil)
        }
        #expect(written != 0)
        png_image_free(&image)

        var read = png_image()
        read.version = UInt32(PNG_IMAGE_VERSION)
        #expect(png_image_begin_read_from_file(&read, path) != 0)
        #expect(read.width == UInt32(width) && read.height == UInt32(height))
        read.format = UInt32(PNG_FORMAT_GRAY)
        var back = [UInt8](repeating: 0, count: width * height)
        #expect(back.withUnsafeMutableBufferPointer { png_image_finish_read(&read, nil, $0.baseAddress, Int32(width), nil) } != 0)
        #expect(back == pixels)
    }

    @Test func openBLASReportsItsCore() {
        let name = String(cString: openblas_get_corename())
        #expect(!name.isEmpty)
    }
}
