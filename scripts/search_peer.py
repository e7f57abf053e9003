#!/usr/bin/env python3
"""hnswlib and FAISS on the vectors `kiln bench search` uses, measured the same way.

Queries: the --queries vectors plus --random-queries corpus rows drawn with the same SplitMix64
sequence as Kiln (seed 42), their own row excluded from their results. Recall@10 is against FAISS
IndexFlatIP (exact). Single-query rates: one thread, one query per call; batch: --threads.
Prints one JSON object.
"""
import argparse, json, os, resource, statistics, sys, tempfile, time

import numpy as np
from safetensors.numpy import load_file


def splitmix(seed):
    state = seed
    mask = (1 << 64) - 1
    while True:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        yield z ^ (z >> 31)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectors", required=True)
    ap.add_argument("--queries")
    ap.add_argument("--labels")
    ap.add_argument("--random-queries", type=int, default=10000)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    import faiss, hnswlib

    corpus = np.ascontiguousarray(load_file(a.vectors)["embeddings"], dtype=np.float32)
    n, d = corpus.shape
    parts, labelled = [], 0
    if a.queries:
        q = load_file(a.queries)["embeddings"]
        parts.append(q)
        labelled = q.shape[0]
    gen = splitmix(42)
    rows = [next(gen) % n for _ in range(min(a.random_queries, n))]
    parts.append(corpus[rows])
    queries = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    relevant = []
    if a.labels:
        relevant = [json.loads(l)["relevant_id"] for l in open(a.labels) if l.strip()]
    k = 10

    def drop_self(ids):
        out = []
        for i, row in enumerate(ids):
            row = [int(x) for x in row if x >= 0]
            if i >= labelled:
                row = [x for x in row if x != rows[i - labelled]]
            out.append(row[:k])
        return out

    faiss.omp_set_num_threads(a.threads)
    flat = faiss.IndexFlatIP(d)
    flat.add(corpus)
    batch = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        _, ids = flat.search(queries, k + 1)
        batch.append(len(queries) / (time.perf_counter() - t0))
    truth = drop_self(ids)
    faiss.omp_set_num_threads(1)
    sample = min(len(queries), 300)
    t0 = time.perf_counter()
    for i in range(sample):
        flat.search(queries[i:i + 1], k + 1)
    flat_single = sample / (time.perf_counter() - t0)

    def recall(found):
        hits = sum(len(set(t) & set(f)) for t, f in zip(truth, found))
        return hits / sum(len(t) for t in truth)

    def labelled_recall(found):
        if not relevant:
            return None
        return sum(1 for i in range(labelled) if relevant[i] in found[i][:k]) / labelled

    index = hnswlib.Index(space="ip", dim=d)
    index.init_index(max_elements=n, ef_construction=a.ef_construction, M=a.m, random_seed=1)
    index.set_num_threads(a.threads)
    t0 = time.perf_counter()
    index.add_items(corpus, np.arange(n))
    build = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "index.bin")
        index.save_index(path)
        size = os.path.getsize(path)
    rows_out = []
    for ef in [int(x) for x in a.ef.split(",") if x.strip()]:
        index.set_ef(ef)
        single, batched = [], []
        for _ in range(a.reps):
            index.set_num_threads(1)
            found = []
            t0 = time.perf_counter()
            for i in range(len(queries)):
                labels, _ = index.knn_query(queries[i:i + 1], k=k + 1)
                found.append(labels[0])
            single.append(len(queries) / (time.perf_counter() - t0))
            index.set_num_threads(a.threads)
            t0 = time.perf_counter()
            index.knn_query(queries, k=k + 1)
            batched.append(len(queries) / (time.perf_counter() - t0))
        answers = drop_self(found)
        rows_out.append({"ef": ef, "recallAt10": recall(answers), "labelledRecallAt10": labelled_recall(answers),
                         "singleQueriesPerSecond": statistics.median(single), "batchQueriesPerSecond": statistics.median(batched)})
    print(json.dumps({
        "threads": a.threads, "hnswlib": hnswlib.__version__ if hasattr(hnswlib, "__version__") else "?",
        "faiss": faiss.__version__, "vectors": n, "dimension": d, "queries": len(queries), "labelledQueries": labelled,
        "buildSeconds": build, "indexMegabytes": size / 1048576,
        "exactSingleQueriesPerSecond": flat_single, "exactBatchQueriesPerSecond": statistics.median(batch),
        "exactLabelledRecallAt10": labelled_recall(truth), "hnsw": rows_out,
        "peakRSSMegabytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }, indent=1))


if __name__ == "__main__":
    main()
