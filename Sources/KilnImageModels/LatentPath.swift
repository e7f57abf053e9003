import Foundation

/// Paths through a latent space between two points.
public enum LatentPath {
    /// `steps` points from a to b (both included) along the great circle between them, scaled
    /// linearly in length: for Gaussian latents this stays where the prior has its mass, where a
    /// straight line would pass through the low-norm middle. Falls back to a straight line when
    /// a and b are (anti)parallel.
    public static func spherical(from a: [Float], to b: [Float], steps: Int) -> [Float] {
        precondition(a.count == b.count && steps >= 2)
        let na = (a.reduce(0) { $0 + Double($1) * Double($1) }).squareRoot(), nb = (b.reduce(0) { $0 + Double($1) * Double($1) }).squareRoot()
        let cosine = zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } / max(na * nb, 1e-12)
        let angle = acos(min(1, max(-1, cosine)))
        var out: [Float] = []
        for s in 0..<steps {
            let t = Double(s) / Double(steps - 1)
            if angle < 1e-4 || Double.pi - angle < 1e-4 {
                out += zip(a, b).map { Float((1 - t) * Double($0) + t * Double($1)) }
                continue
            }
            let wa = sin((1 - t) * angle) / sin(angle), wb = sin(t * angle) / sin(angle)
            let length = (1 - t) * na + t * nb
            let direction = zip(a, b).map { wa * Double($0) / na + wb * Double($1) / nb }
            out += direction.map { Float($0 * length) }
        }
        return out
    }
}
