/// Elements per task for memory-bound elementwise passes over the shared pool: below this a
/// dispatch costs more than it saves, so small tensors run on the calling thread.
let elementwiseGrain = 1 << 14
