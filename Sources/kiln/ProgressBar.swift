import Foundation

/// "label ████░░ 12/40 3.1/s ETA 9 s" on a terminal's stderr; silent when stderr is not a
/// terminal or `quiet` is set (--json).
final class ProgressBar {
    let total: Int, label: String
    private var done = 0
    private let start = Date()
    private let enabled: Bool

    /// The rate counts `itemsPerStep` `unit` per step (e.g. images per training step).
    private let itemsPerStep: Double, unit: String

    init(total: Int, label: String, quiet: Bool = false, itemsPerStep: Int = 1, unit: String = "") {
        (self.total, self.label) = (total, label)
        (self.itemsPerStep, self.unit) = (Double(itemsPerStep), unit)
        enabled = !quiet && isatty(STDERR_FILENO) != 0
    }

    func advance() { update(done + 1) }

    func update(_ count: Int) { update(count, detail: "") }

    /// `detail` (e.g. the current loss) follows the rate and ETA.
    func update(_ count: Int, detail: String) {
        done = count
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(start), rate = Double(done) / max(elapsed, 1e-6)
        let filled = total == 0 ? 20 : min(20, 20 * done / total)
        let eta = rate > 0 ? Double(max(0, total - done)) / rate : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: 20 - filled)
        let speed = unit.isEmpty ? String(format: "%.1f/s", rate) : String(format: "%.0f %@/s", rate * itemsPerStep, unit)
        FileHandle.standardError.write(Data(String(format: "\r%@ %@ %d/%d %@ ETA %.0f s %@ ", label, bar, done, total, speed, eta, detail).utf8))
    }

    func note(_ message: String) {
        FileHandle.standardError.write(Data(((enabled ? "\r\u{1B}[K" : "") + "warning: " + message + "\n").utf8))
    }

    func finish() { if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}
