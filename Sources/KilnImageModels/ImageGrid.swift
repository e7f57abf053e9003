/// Gray images in [0, 1] → 8-bit pixels, and tiles → one grid image with a padding border.
public enum ImageGrid {
    /// floor(clip(v, 0, 1)·255 + 0.5), the conversion the reference tools use.
    public static func bytes(_ values: [Float]) -> [UInt8] {
        values.map { UInt8(((min(max($0.isNaN ? 0 : $0, 0), 1) * 255) + 0.5).rounded(.down)) }
    }

    /// Tiles of side × side pixels (row-major, tile after tile) laid out in `columns` × `rows`,
    /// `padding` pixels of 0 around and between them; missing tiles stay 0.
    public static func compose(_ tiles: [UInt8], side: Int, columns: Int, rows: Int, padding: Int = 2) -> (width: Int, height: Int, pixels: [UInt8]) {
        let width = columns * (side + padding) + padding, height = rows * (side + padding) + padding
        var pixels = [UInt8](repeating: 0, count: width * height)
        let count = min(tiles.count / (side * side), columns * rows)
        for t in 0..<count {
            let top = padding + (t / columns) * (side + padding), left = padding + (t % columns) * (side + padding)
            for y in 0..<side {
                let source = t * side * side + y * side
                pixels.replaceSubrange(((top + y) * width + left)..<((top + y) * width + left + side), with: tiles[source..<(source + side)])
            }
        }
        return (width, height, pixels)
    }
}
