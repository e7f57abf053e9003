import CKilnKernels
import Foundation
import Synchronization

/// A parallel-for pool built for many small dispatches (a decoded token makes hundreds).
///
/// Workers spin briefly after each job, so back-to-back dispatches cost about a microsecond, then
/// park on a condition variable so an idle process does not burn the shared cores. The calling
/// thread always works too, and a worker that has not joined a job by the time the caller has run
/// out of tasks is simply left out: a dispatch never waits for a parked thread to wake.
public final class ThreadPool: @unchecked Sendable {
    /// One pool for the process, sized to the available cores (override with KILN_THREADS).
    public static let shared = ThreadPool(threadCount: defaultThreadCount)

    public static var defaultThreadCount: Int {
        if let text = ProcessInfo.processInfo.environment["KILN_THREADS"], let n = Int(text), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Threads that run a job, including the caller.
    public let threadCount: Int
    /// How long a worker spins after a job before parking.
    public let spinNanoseconds: UInt64

    private static let closedBit = 1 << 62

    private let generation = Atomic<UInt64>(0)
    private let nextTask = Atomic<Int>(0)
    private let joined = Atomic<Int>(0)  // workers that joined the current job; closedBit once closed
    private let finished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    // Written by the dispatching thread before `generation` is released; read by workers after
    // they acquire it and join.
    private nonisolated(unsafe) var job: ((Int) -> Void)?
    private nonisolated(unsafe) var taskCount = 0
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init(threadCount: Int, spinMicroseconds: Int = 200) {
        self.threadCount = max(1, threadCount)
        self.spinNanoseconds = UInt64(max(0, spinMicroseconds)) * 1000
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for index in 1..<self.threadCount {
            let thread = Thread { [self] in workerLoop() }
            thread.name = "kiln-worker-\(index)"
            thread.start()
        }
    }

    /// Ends the workers of a pool made by `init` (not needed for `shared`). The pool runs jobs
    /// serially afterwards.
    public func shutdown() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Runs body over 0..<count split into contiguous ranges of at least `grain` elements, in
    /// parallel, and returns when all have run. Nested or concurrent calls run serially.
    public func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let maxTasks = threadCount * 4
        let taskSize = max(max(1, grain), (count + maxTasks - 1) / maxTasks)
        let tasks = (count + taskSize - 1) / taskSize
        if tasks == 1 || threadCount == 1 || stopping.load(ordering: .relaxed) {
            body(0..<count)
            return
        }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            body(0..<count)
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { escapable in
            let run: (Int) -> Void = { task in
                let start = task * taskSize
                escapable(start..<min(count, start + taskSize))
            }
            withoutActuallyEscaping(run) { run in
                dispatch(tasks: tasks, run)
            }
        }
    }

    private func dispatch(tasks: Int, _ run: @escaping (Int) -> Void) {
        job = run
        taskCount = tasks
        nextTask.store(0, ordering: .relaxed)
        finished.store(0, ordering: .relaxed)
        joined.store(0, ordering: .releasing)
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        runTasks(run, tasks)
        // Close the job: workers arriving later skip it. Wait only for those that joined.
        let joinedCount = joined.bitwiseOr(Self.closedBit, ordering: .acquiringAndReleasing).oldValue
        while finished.load(ordering: .acquiring) < joinedCount { kiln_cpu_relax() }
        job = nil
    }

    @inline(__always)
    private func runTasks(_ run: (Int) -> Void, _ tasks: Int) {
        while true {
            let task = nextTask.add(1, ordering: .relaxed).oldValue
            if task >= tasks { return }
            run(task)
        }
    }

    private func workerLoop() {
        var seen = generation.load(ordering: .acquiring)
        while true {
            seen = waitForGeneration(after: seen)
            if stopping.load(ordering: .acquiring) { return }
            let before = joined.add(1, ordering: .acquiringAndReleasing).oldValue
            if before & Self.closedBit != 0 { continue }
            if let run = job { runTasks(run, taskCount) }
            finished.add(1, ordering: .releasing)
        }
    }

    private func waitForGeneration(after seen: UInt64) -> UInt64 {
        var spins = 0
        var deadline: UInt64 = 0
        while true {
            let current = generation.load(ordering: .acquiring)
            if current != seen { return current }
            spins += 1
            if spins & 255 != 0 {
                kiln_cpu_relax()
                continue
            }
            let now = monotonicNanoseconds()
            if deadline == 0 {
                deadline = now + spinNanoseconds
            } else if now >= deadline {
                pthread_mutex_lock(mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(condition, mutex)
                }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(mutex)
                deadline = 0
            }
        }
    }
}

/// Nanoseconds on the monotonic clock (spin deadlines here, timings in benchmarks).
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}
