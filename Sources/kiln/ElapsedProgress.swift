import Foundation

/// A one-line "label … 12.3 s" ticker on a terminal's stderr for work whose length is unknown
/// (the SentencePiece trainer reports no progress); silent when stderr is not a terminal.
final class ElapsedProgress: @unchecked Sendable {
    private let timer: DispatchSourceTimer?
    private let lock = NSLock()
    private var stopped = false

    init(label: String, quiet: Bool = false) {
        guard !quiet, isatty(STDERR_FILENO) != 0 else {
            timer = nil
            return
        }
        let start = Date()
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global())
        timer.schedule(deadline: .now(), repeating: .milliseconds(200))
        timer.setEventHandler {
            let line = String(format: "\r%@ … %.1f s", label, Date().timeIntervalSince(start))
            FileHandle.standardError.write(Data(line.utf8))
        }
        self.timer = timer
        timer.resume()
    }

    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped, let timer else { return }
        stopped = true
        timer.cancel()
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
