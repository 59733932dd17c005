#!/usr/bin/python3
"""Peer baselines for AdannsDotNet, measured on the same files as the engine's bench.

Runs Debian's FAISS (python3-faiss) and hnswlib (python3-hnswlib) and writes the same JSONL schema as
`dotnet run --project bench` (one object per operating point), so both can be merged into one table.

Install once (as root):
    apt-get install -y --no-install-recommends python3-faiss python3-hnswlib python3-numpy libopenblas0-openmp

Run with Debian's python (it has the faiss module):
    /usr/bin/python3 bench/peers/peers.py --base B.fvecs --queries Q.fvecs [--gt G.ivecs] --metric ip \
        --k 10 --threads 1 --methods flat --out peers.jsonl

Methods:
  flat   exact IndexFlatIP / IndexFlatL2; timed as one batch call and as one query per call.

Debian's faiss links the reference BLAS unless an OpenMP OpenBLAS is present: this script re-executes itself
against /usr/lib/x86_64-linux-gnu/openblas-openmp when it exists, and pins OpenMP to --threads.
"""
import argparse
import json
import os
import platform
import sys
import time

OPENBLAS_OPENMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


def reexec_with_openblas(threads):
    """Point the dynamic loader at OpenMP OpenBLAS before numpy/faiss load (must happen at process start)."""
    if os.environ.get("ADANNS_PEERS_REEXEC") == "1":
        return
    env = dict(os.environ)
    env["ADANNS_PEERS_REEXEC"] = "1"
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    if os.path.isdir(OPENBLAS_OPENMP):
        env["LD_LIBRARY_PATH"] = OPENBLAS_OPENMP + ":" + env.get("LD_LIBRARY_PATH", "")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help=".fvecs / .fbin / .npy (float32)")
    ap.add_argument("--queries", required=True)
    ap.add_argument("--gt", default=None, help=".ivecs / .ibin / .npy ground truth; computed exactly if absent")
    ap.add_argument("--metric", default="l2", choices=["l2", "ip", "cosine"])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default="flat")
    ap.add_argument("--single-queries", type=int, default=200,
                    help="queries timed one call at a time (the rest of the set is used for batch timing)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions; the best is reported")
    ap.add_argument("--dataset", default=None, help="name for the JSONL 'dataset' field (default: base file stem)")
    ap.add_argument("--out", default=None, help="append JSONL results here")
    return ap.parse_args()


def read_matrix(path, dtype):
    import numpy as np
    p = path.lower()
    if p.endswith(".npy"):
        return np.load(path).astype(dtype)
    if p.endswith((".fvecs", ".ivecs")):
        raw = np.fromfile(path, dtype=np.int32)
        d = int(raw[0])
        rows = raw.reshape(-1, d + 1)
        body = rows[:, 1:]
        return body.view(np.float32).astype(dtype) if p.endswith(".fvecs") else body.astype(dtype)
    if p.endswith((".fbin", ".ibin")):
        header = np.fromfile(path, dtype=np.uint32, count=2)
        n, d = int(header[0]), int(header[1])
        elem = np.float32 if p.endswith(".fbin") else np.int32
        return np.fromfile(path, dtype=elem, offset=8, count=n * d).reshape(n, d).astype(dtype)
    raise SystemExit(f"unsupported file: {path}")


def recall_at(found, truth, k):
    hits = 0
    for f, t in zip(found[:, :k], truth[:, :k]):
        hits += len(set(int(x) for x in f if x >= 0) & set(int(x) for x in t))
    return hits / (len(found) * k)


def best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    args = parse_args()
    reexec_with_openblas(args.threads)
    import numpy as np
    import faiss

    faiss.omp_set_num_threads(args.threads)
    xb = np.ascontiguousarray(read_matrix(args.base, np.float32))
    xq = np.ascontiguousarray(read_matrix(args.queries, np.float32))
    n, dim = xb.shape
    nq = xq.shape[0]
    if args.metric == "cosine":
        faiss.normalize_L2(xb)
        faiss.normalize_L2(xq)
    use_ip = args.metric in ("ip", "cosine")
    dataset = args.dataset or os.path.splitext(os.path.basename(args.base))[0]
    k = args.k

    if args.gt:
        gt = read_matrix(args.gt, np.int64)
    else:
        exact = faiss.IndexFlatIP(dim) if use_ip else faiss.IndexFlatL2(dim)
        exact.add(xb)
        _, gt = exact.search(xq, 100)

    results = []

    def emit(method, params, ids, qps, build_s, bytes_per_vector, lat_us=None):
        rec = {
            "dataset": dataset, "method": method, "params": params, "k": k,
            "recall_at_1": recall_at(ids, gt, 1), "recall_at_k": recall_at(ids, gt, k),
            "flops_per_query": float(n * dim) if method.startswith("faiss-flat") else None,
            "qps": qps, "p50_us": lat_us[0] if lat_us else None, "p99_us": lat_us[1] if lat_us else None,
            "build_seconds": build_s, "bytes_per_vector": bytes_per_vector, "threads": args.threads,
            "n": n, "dim": dim, "nq": nq, "peer": "faiss " + faiss.__version__,
            "machine": platform.processor() or platform.machine(),
        }
        results.append(rec)
        print(f"{method:24s} {json.dumps(params):28s} recall@1 {rec['recall_at_1']:.4f} recall@{k} "
              f"{rec['recall_at_k']:.4f} QPS {qps:10.1f}" + (f"  p50 {lat_us[0]:.0f} us p99 {lat_us[1]:.0f} us" if lat_us else ""))

    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        if method != "flat":
            raise SystemExit(f"unknown method '{method}' (this script knows: flat)")
        t0 = time.perf_counter()
        index = faiss.IndexFlatIP(dim) if use_ip else faiss.IndexFlatL2(dim)
        index.add(xb)
        build_s = time.perf_counter() - t0
        holder = {}

        def batch():
            holder["ids"] = index.search(xq, k)[1]

        t = best_time(batch, args.repeats)
        emit("faiss-flat-batch", {"mode": "batch"}, holder["ids"], nq / t, build_s, 4 * dim)

        m = min(args.single_queries, nq)
        lat = np.zeros(m)
        ids_single = np.zeros((m, k), dtype=np.int64)
        index.search(xq[:1], k)  # warm-up
        best_total = float("inf")
        for _ in range(args.repeats):
            t_all = time.perf_counter()
            for i in range(m):
                t_i = time.perf_counter()
                ids_single[i] = index.search(xq[i:i + 1], k)[1][0]
                lat[i] = time.perf_counter() - t_i
            best_total = min(best_total, time.perf_counter() - t_all)
        full_ids = np.full((nq, k), -1, dtype=np.int64)
        full_ids[:m] = ids_single
        rec_gt = gt
        gt_sub = rec_gt[:m]
        r1, rk = recall_at(ids_single, gt_sub, 1), recall_at(ids_single, gt_sub, k)
        p50, p99 = np.percentile(lat, 50) * 1e6, np.percentile(lat, 99) * 1e6
        results.append({
            "dataset": dataset, "method": "faiss-flat-single", "params": {"mode": "single"}, "k": k,
            "recall_at_1": r1, "recall_at_k": rk, "flops_per_query": float(n * dim), "qps": m / best_total,
            "p50_us": p50, "p99_us": p99, "build_seconds": build_s, "bytes_per_vector": 4 * dim,
            "threads": args.threads, "n": n, "dim": dim, "nq": m, "peer": "faiss " + faiss.__version__,
            "machine": platform.processor() or platform.machine(),
        })
        print(f"{'faiss-flat-single':24s} {json.dumps({'mode': 'single'}):28s} recall@1 {r1:.4f} recall@{k} {rk:.4f} "
              f"QPS {m / best_total:10.1f}  p50 {p50:.0f} us p99 {p99:.0f} us")

    if args.out:
        with open(args.out, "a") as f:
            for rec in results:
                f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
