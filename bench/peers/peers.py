#!/usr/bin/python3
"""Peer baselines for AdannsDotNet, measured on the same files as the engine's bench.

Runs Debian's FAISS (python3-faiss) and hnswlib (python3-hnswlib) and writes the same JSONL schema as
`dotnet run --project bench` (one object per operating point), so both can be merged into one table
(bench/peers/merge.py).

Install once (as root):
    apt-get install -y --no-install-recommends python3-faiss python3-hnswlib python3-numpy libopenblas0-openmp

Run with Debian's python (it has the faiss module):
    /usr/bin/python3 bench/peers/peers.py --base B.fvecs --queries Q.fvecs [--gt G.ivecs] --metric ip \
        --k 10 --threads 1 --methods hnswlib,faiss-ivfflat --out peers.jsonl

Methods (--methods, comma list; 'all' = every one below):
  flat             exact IndexFlatIP / IndexFlatL2; emits faiss-flat-batch and faiss-flat-single.
  faiss-ivfflat    IVF{nlist},Flat; sweep nprobe 1,2,4,... (capped at nlist).
  faiss-ivfpq      IVF{nlist},PQ{M}x8; sweep nprobe.
  faiss-ivfpq-rf   the same index inside IndexRefineFlat (rerank with full vectors); sweep k_factor x nprobe.
  faiss-opq        OPQ{M},IVF{nlist},PQ{M}x8; sweep nprobe.
  faiss-opq-rf     the same inside IndexRefineFlat; sweep k_factor x nprobe.
  faiss-ivfpqfs-rf IVF{nlist},PQ{M}x4fs (FAISS's 4-bit fast scan) inside IndexRefineFlat; sweep k_factor x nprobe.
  faiss-opqfs-rf   OPQ{M},IVF{nlist},PQ{M}x4fs inside IndexRefineFlat; sweep k_factor x nprobe.
  faiss-opq-flat   OPQ{M},PQ{M}x8 without IVF, for each --pq-ms budget: recall of the codes alone, then inside
                   IndexRefineFlat with k_factor 100/k (rerank of 100 candidates with full vectors).
  faiss-hnsw       IndexHNSWFlat(M=--hnsw-m, efConstruction=--ef-construction); sweep efSearch (--faiss-ef).
  hnswlib          hnswlib.Index (M=--hnsw-m, ef_construction=--ef-construction); sweep ef (--hnswlib-ef).
nprobe sweeps stop at recall@k >= --stop-recall (0.999) or when recall@k gains less than --plateau (0.0005)
from one nprobe to the next. nlist defaults to round(4*sqrt(n)); M (PQ sub-quantizers) defaults to 48 when it
divides dim, else the largest divisor of dim <= dim/8.

Each operating point is timed two ways:
  qps          all queries in one call (batch), best of --repeats after a warm-up call;
  p50/p99_us   one query per call over the first --single-queries queries (best of --repeats passes;
               qps_single = those queries / that pass's time). Our engine is compared per query too.
Search threads: --threads (faiss.omp_set_num_threads / hnswlib num_threads). Index building uses
--build-threads (default 1: single-thread build times).

JSONL fields: dataset, method, params, k, recall_at_1, recall_at_k, flops_per_query, qps, qps_single, p50_us,
p99_us, build_seconds, bytes_per_vector, threads, n, dim, nq, plus ndis (distances per query, where faiss
counts them), peer (library version), machine.
  flops_per_query  multiply-adds per query, our convention (one per dim per distance):
                   ivfflat: nlist*dim (coarse) + ndis*dim;
                   ivfpq/opq: nlist*dim + 256*dim (lookup tables) + ndis*M (table adds) [+ dim*dim for the
                   OPQ rotation] [+ nprobe*256*M per-list tables for L2] [+ k*k_factor*dim rerank for -rf];
                   faiss-hnsw: ndis*dim with ndis from faiss.cvar.hnsw_stats (faiss 1.7.3 counts level-0
                   distances in n3; upper levels are a few dozen more); flat: n*dim;
                   hnswlib: null (its API exposes no distance count).
  bytes_per_vector faiss.serialize_index(index) size / n; hnswlib: save_index file size / n.
--max-base N uses the first N base rows and recomputes exact ground truth (--gt is then ignored).

Known issue (not yet investigated): PQ/OPQ training in Debian's faiss 1.7.3 is very slow on the 2-core dev VM
(IVF283,PQ48 on 5,000 x 384: 286 s; OPQ24,IVF219,PQ24 on 3,000 x 384: 192 s, single thread), so the
faiss-ivfpq*/faiss-opq* methods have only been run on small --max-base subsets so far.

Debian's faiss links the reference BLAS unless an OpenMP OpenBLAS is present: this script re-executes itself
against /usr/lib/x86_64-linux-gnu/openblas-openmp when it exists, and pins OpenMP to --threads. Debian's faiss
is a generic build (no AVX2 distance kernels): its ndis is a fair work measure, its QPS a pessimistic one.
"""
import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time

OPENBLAS_OPENMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
ALL_METHODS = ["flat", "faiss-ivfflat", "faiss-ivfpq", "faiss-ivfpq-rf", "faiss-opq", "faiss-opq-rf", "faiss-ivfpqfs-rf",
               "faiss-opqfs-rf", "faiss-opq-flat", "faiss-hnsw", "hnswlib"]


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


def int_list(text):
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got '{text}'")
    if not vals or min(vals) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers, got '{text}'")
    return vals


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_argument_group("data")
    g.add_argument("--base", required=True, help=".fvecs / .fbin / .npy (float32)")
    g.add_argument("--queries", required=True)
    g.add_argument("--gt", default=None, help=".ivecs / .ibin / .npy ground truth; computed exactly if absent")
    g.add_argument("--metric", default="l2", choices=["l2", "ip", "cosine"],
                   help="cosine L2-normalises base and queries, then uses inner product (default l2)")
    g.add_argument("--max-base", type=int, default=None,
                   help="use only the first N base rows (exact ground truth is recomputed; --gt ignored)")
    g.add_argument("--max-queries", type=int, default=None, help="use only the first N queries")
    g.add_argument("--dataset", default=None, help="name for the JSONL 'dataset' field (default: base file stem)")
    g = ap.add_argument_group("search")
    g.add_argument("--k", type=int, default=10)
    g.add_argument("--threads", type=int, default=1, help="search threads (default 1)")
    g.add_argument("--build-threads", type=int, default=1, help="threads for training/adding/graph build (default 1)")
    g.add_argument("--methods", default="flat", help="comma list of methods (see above) or 'all' (default flat)")
    g.add_argument("--single-queries", type=int, default=200,
                   help="queries timed one call at a time for p50/p99 latency (default 200; 0 = skip)")
    g.add_argument("--repeats", type=int, default=3, help="timed repetitions; the best is reported (default 3)")
    g = ap.add_argument_group("index parameters")
    g.add_argument("--nlist", type=int, default=None, help="IVF lists (default round(4*sqrt(n)))")
    g.add_argument("--pq-m", type=int, default=None, help="PQ sub-quantizers M (must divide dim; default 48)")
    g.add_argument("--pq-ms", type=int_list, default=[8, 16, 32, 64],
                   help="faiss-opq-flat: bytes per code to measure (default 8,16,32,64)")
    g.add_argument("--pq-train", type=int, default=None,
                   help="faiss-opq-flat: train OPQ/PQ on the first N base rows (default all)")
    g.add_argument("--kfactors", type=int_list, default=[1, 2, 4, 8],
                   help="IndexRefineFlat k_factor sweep for *-rf methods (default 1,2,4,8)")
    g.add_argument("--stop-recall", type=float, default=0.999, help="nprobe sweeps stop at this recall@k")
    g.add_argument("--plateau", type=float, default=0.0005,
                   help="nprobe sweeps stop when recall@k gains less than this from one step to the next")
    g.add_argument("--hnsw-m", type=int, default=16, help="HNSW M for faiss-hnsw and hnswlib (default 16)")
    g.add_argument("--ef-construction", type=int, default=200, help="HNSW efConstruction (default 200)")
    g.add_argument("--faiss-ef", type=int_list, default=[16, 32, 64, 128, 256, 512],
                   help="faiss-hnsw efSearch sweep (default 16..512)")
    g.add_argument("--hnswlib-ef", type=int_list, default=[10, 16, 32, 64, 128, 256, 512],
                   help="hnswlib ef sweep (default 10..512)")
    g.add_argument("--seed", type=int, default=123, help="seed for k-means / hnswlib (default 123)")
    g.add_argument("--index-cache", default=None,
                   help="faiss-ivfpq / faiss-opq(-rf): keep trained indexes here and reuse them on later runs")
    g = ap.add_argument_group("output")
    g.add_argument("--out", default=None, help="append JSONL results here")
    args = ap.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if methods == ["all"]:
        methods = list(ALL_METHODS)
    for m in methods:
        if m not in ALL_METHODS:
            ap.error(f"unknown method '{m}'; known: {', '.join(ALL_METHODS)}, all")
    args.method_list = methods
    if args.k < 1 or args.threads < 1 or args.build_threads < 1 or args.repeats < 1:
        ap.error("--k, --threads, --build-threads and --repeats must be >= 1")
    return args


def read_matrix(path, dtype, limit=None):
    import numpy as np
    p = path.lower()
    if p.endswith(".npy"):
        m = np.load(path, mmap_mode="r")
        return np.array(m[:limit] if limit else m, dtype=dtype)
    if p.endswith((".fvecs", ".ivecs")):
        raw = np.fromfile(path, dtype=np.int32)
        d = int(raw[0])
        rows = raw.reshape(-1, d + 1)
        if limit:
            rows = rows[:limit]
        body = rows[:, 1:]
        return body.view(np.float32).astype(dtype) if p.endswith(".fvecs") else body.astype(dtype)
    if p.endswith((".fbin", ".ibin")):
        header = np.fromfile(path, dtype=np.uint32, count=2)
        n, d = int(header[0]), int(header[1])
        if limit:
            n = min(n, limit)
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


def default_pq_m(dim, requested):
    if requested is not None:
        if requested <= 0 or dim % requested:
            raise SystemExit(f"--pq-m {requested} must divide dim {dim}")
        return requested
    if dim % 48 == 0:
        return 48
    return max(m for m in range(1, dim // 8 + 1) if dim % m == 0) if dim >= 8 else dim


class Runner:
    HEADER = (f"{'method':16s} {'params':24s} {'rec@1':>6s} {'rec@k':>6s} {'MFLOP/q':>8s} {'QPS':>9s} "
              f"{'QPS(1)':>8s} {'p50 us':>8s} {'p99 us':>8s} {'build s':>8s} {'B/vec':>7s}")

    def __init__(self, args, np, faiss, xb, xq, gt):
        self.a, self.np, self.faiss = args, np, faiss
        self.xb, self.xq, self.gt = xb, xq, gt
        self.n, self.dim = xb.shape
        self.nq = xq.shape[0]
        self.k = args.k
        self.use_ip = args.metric in ("ip", "cosine")
        self.faiss_metric = faiss.METRIC_INNER_PRODUCT if self.use_ip else faiss.METRIC_L2
        self.dataset = args.dataset or os.path.splitext(os.path.basename(args.base))[0]
        self.nlist = args.nlist or max(1, int(round(4 * math.sqrt(self.n))))
        self.results = []
        self.out = open(args.out, "a") if args.out else None

    # ---------- helpers
    def search_threads(self):
        self.faiss.omp_set_num_threads(self.a.threads)

    def build_threads(self):
        self.faiss.omp_set_num_threads(self.a.build_threads)

    def cache_path(self, spec):
        """Where --index-cache keeps a trained index for this spec and base file (None without the option)."""
        if not self.a.index_cache:
            return None
        os.makedirs(self.a.index_cache, exist_ok=True)
        stem = os.path.splitext(os.path.basename(self.a.base))[0]
        return os.path.join(self.a.index_cache, f"{stem}-{self.a.metric}-{spec.replace(',', '_')}.faiss")

    def index_bytes(self, index):
        return int(self.faiss.serialize_index(index).nbytes)

    def measure(self, search, before=None, after=None):
        """Times search(queries)->ids: batch (best of repeats) and one query per call.
        before() runs before each batch call (resets counters); after() after it (reads them)."""
        np = self.np
        search(self.xq[: min(64, self.nq)])  # warm-up
        best, ids, extra = float("inf"), None, None
        for _ in range(self.a.repeats):
            if before:
                before()
            t0 = time.perf_counter()
            ids = search(self.xq)
            dt = time.perf_counter() - t0
            if after:
                extra = after()
            best = min(best, dt)
        m = min(self.a.single_queries, self.nq)
        p50 = p99 = qps1 = None
        if m > 0:
            best_total, best_lat = float("inf"), None
            lat = np.zeros(m)
            for _ in range(self.a.repeats):
                t_all = time.perf_counter()
                for i in range(m):
                    t_i = time.perf_counter()
                    search(self.xq[i:i + 1])
                    lat[i] = time.perf_counter() - t_i
                total = time.perf_counter() - t_all
                if total < best_total:
                    best_total, best_lat = total, lat.copy()
            p50, p99 = float(np.percentile(best_lat, 50) * 1e6), float(np.percentile(best_lat, 99) * 1e6)
            qps1 = m / best_total
        return np.asarray(ids), self.nq / best, qps1, p50, p99, extra

    def emit(self, method, params, ids, qps, qps1, p50, p99, build_s, nbytes, flops, peer, ndis=None):
        rec = {
            "dataset": self.dataset, "method": method, "params": params, "k": self.k,
            "recall_at_1": recall_at(ids, self.gt, 1), "recall_at_k": recall_at(ids, self.gt, self.k),
            "flops_per_query": None if flops is None else float(flops),
            "qps": qps, "qps_single": qps1, "p50_us": p50, "p99_us": p99,
            "build_seconds": build_s, "bytes_per_vector": nbytes / self.n, "threads": self.a.threads,
            "n": self.n, "dim": self.dim, "nq": self.nq, "peer": peer,
            "machine": platform.processor() or platform.machine(),
        }
        if ndis is not None:
            rec["ndis"] = float(ndis)
        self.results.append(rec)
        if self.out:
            self.out.write(json.dumps(rec) + "\n")
            self.out.flush()

        def f(v, spec):
            return "-" if v is None else format(v, spec)
        ps = " ".join(f"{k}={v}" for k, v in params.items())
        print(f"{method:16s} {ps:24s} {rec['recall_at_1']:6.4f} {rec['recall_at_k']:6.4f} "
              f"{f(None if flops is None else flops / 1e6, '8.3f'):>8s} {qps:9.1f} {f(qps1, '8.1f'):>8s} "
              f"{f(p50, '8.0f'):>8s} {f(p99, '8.0f'):>8s} {build_s:8.2f} {rec['bytes_per_vector']:7.0f}",
              flush=True)
        return rec

    def nprobes(self, nlist):
        p, out = 1, []
        while p < nlist:
            out.append(p)
            p *= 2
        out.append(nlist)
        return out

    # ---------- methods
    def run_flat(self):
        faiss, np, k = self.faiss, self.np, self.k
        peer = "faiss " + faiss.__version__
        self.build_threads()
        t0 = time.perf_counter()
        index = faiss.IndexFlatIP(self.dim) if self.use_ip else faiss.IndexFlatL2(self.dim)
        index.add(self.xb)
        build_s = time.perf_counter() - t0
        self.search_threads()
        holder = {}

        def batch():
            holder["ids"] = index.search(self.xq, k)[1]

        batch()  # warm-up
        t = best_time(batch, self.a.repeats)
        self.emit("faiss-flat-batch", {"mode": "batch"}, holder["ids"], self.nq / t, None, None, None, build_s,
                  4 * self.dim * self.n, self.n * self.dim, peer)

        m = min(self.a.single_queries, self.nq)
        if m == 0:
            return
        lat = np.zeros(m)
        ids_single = np.zeros((m, k), dtype=np.int64)
        index.search(self.xq[:1], k)  # warm-up
        best_total = float("inf")
        for _ in range(self.a.repeats):
            t_all = time.perf_counter()
            for i in range(m):
                t_i = time.perf_counter()
                ids_single[i] = index.search(self.xq[i:i + 1], k)[1][0]
                lat[i] = time.perf_counter() - t_i
            best_total = min(best_total, time.perf_counter() - t_all)
        gt_sub = self.gt[:m]
        r1, rk = recall_at(ids_single, gt_sub, 1), recall_at(ids_single, gt_sub, k)
        p50, p99 = float(np.percentile(lat, 50) * 1e6), float(np.percentile(lat, 99) * 1e6)
        rec = {
            "dataset": self.dataset, "method": "faiss-flat-single", "params": {"mode": "single"}, "k": k,
            "recall_at_1": r1, "recall_at_k": rk, "flops_per_query": float(self.n * self.dim),
            "qps": m / best_total, "p50_us": p50, "p99_us": p99, "build_seconds": build_s,
            "bytes_per_vector": 4 * self.dim, "threads": self.a.threads, "n": self.n, "dim": self.dim, "nq": m,
            "peer": peer, "machine": platform.processor() or platform.machine(),
        }
        self.results.append(rec)
        if self.out:
            self.out.write(json.dumps(rec) + "\n")
            self.out.flush()
        print(f"{'faiss-flat-single':16s} {'mode=single':24s} {r1:6.4f} {rk:6.4f} {self.n * self.dim / 1e6:8.3f} "
              f"{m / best_total:9.1f} {m / best_total:8.1f} {p50:8.0f} {p99:8.0f} {build_s:8.2f} {4 * self.dim:7.0f}",
              flush=True)

    def _ivf_sweep(self, method, index, ivf, build_s, nbytes, flops_of, kfactors=(None,), refine=None):
        """Sweeps nprobe (and k_factor) on a trained, filled IVF index; flops_of(ndis, nprobe, kf) -> flops."""
        faiss = self.faiss
        stats = faiss.cvar.indexIVF_stats
        peer = "faiss " + faiss.__version__
        target = refine if refine is not None else index
        self.search_threads()
        for kf in kfactors:
            if refine is not None:
                refine.k_factor = float(kf)
            prev = None
            for npb in self.nprobes(ivf.nlist):
                ivf.nprobe = npb
                ids, qps, qps1, p50, p99, ndis = self.measure(
                    lambda q: target.search(q, self.k)[1],
                    before=stats.reset, after=lambda: stats.ndis / self.nq)
                params = {"nlist": ivf.nlist, "nprobe": npb}
                if kf is not None:
                    params["k_factor"] = kf
                rec = self.emit(method, params, ids, qps, qps1, p50, p99, build_s, nbytes,
                                flops_of(ndis, npb, kf), peer, ndis=ndis)
                r = rec["recall_at_k"]
                if r >= self.a.stop_recall or (prev is not None and r - prev < self.a.plateau):
                    break
                prev = r

    def run_ivfflat(self):
        faiss = self.faiss
        self.build_threads()
        t0 = time.perf_counter()
        index = faiss.index_factory(self.dim, f"IVF{self.nlist},Flat", self.faiss_metric)
        faiss.extract_index_ivf(index).cp.seed = self.a.seed
        index.train(self.xb)
        index.add(self.xb)
        build_s = time.perf_counter() - t0
        nbytes = self.index_bytes(index)
        d, nlist = self.dim, self.nlist
        self._ivf_sweep("faiss-ivfflat", index, faiss.extract_index_ivf(index), build_s, nbytes,
                        lambda ndis, npb, kf: nlist * d + ndis * d)

    def _pq_family(self, opq, plain, rf, fastscan=False):
        faiss, np = self.faiss, self.np
        M = default_pq_m(self.dim, self.a.pq_m)
        spec = (f"OPQ{M}," if opq else "") + f"IVF{self.nlist},PQ{M}" + ("x4fs" if fastscan else "")
        name = ("faiss-opq" if opq else "faiss-ivfpq") + ("fs" if fastscan else "")
        self.build_threads()
        cached = self.cache_path(spec)
        if cached and os.path.exists(cached):
            # A trained index from an earlier run on the same data (OPQ training takes most of an hour here): the
            # build time reported is the one measured when it was built.
            index = faiss.read_index(cached)
            with open(cached + ".json") as f:
                build_s = json.load(f)["build_s"]
            print(f"# {spec}: loaded {cached} (built in {build_s:.1f} s)", flush=True)
        else:
            t0 = time.perf_counter()
            index = faiss.index_factory(self.dim, spec, self.faiss_metric)
            faiss.extract_index_ivf(index).cp.seed = self.a.seed
            index.train(self.xb)
            index.add(self.xb)
            build_s = time.perf_counter() - t0
            if cached:
                faiss.write_index(index, cached)
                with open(cached + ".json", "w") as f:
                    json.dump({"spec": spec, "build_s": build_s, "base": self.a.base}, f)
        ivf = faiss.extract_index_ivf(index)
        nbytes = self.index_bytes(index)
        d, nlist, k, l2 = self.dim, self.nlist, self.k, not self.use_ip

        def flops(ndis, npb, kf):
            f = nlist * d + 256 * d + ndis * M
            if opq:
                f += d * d
            if l2:
                f += npb * 256 * M
            if kf is not None:
                f += k * kf * d
            return f

        print(f"# {spec}: M={M} x {4 if fastscan else 8} bits, built in {build_s:.1f} s", flush=True)
        if plain:
            self._ivf_sweep(name, index, ivf, build_s, nbytes, flops)
        if rf:
            t1 = time.perf_counter()
            refine = faiss.IndexRefineFlat(index, faiss.swig_ptr(self.xb))
            rf_build = build_s + (time.perf_counter() - t1)
            self._ivf_sweep(name + "-rf", index, ivf, rf_build, self.index_bytes(refine), flops,
                            kfactors=self.a.kfactors, refine=refine)
            del refine

    def run_opq_flat(self):
        faiss = self.faiss
        peer = "faiss " + faiss.__version__
        d, k = self.dim, self.k
        train = self.xb if self.a.pq_train is None else self.xb[: self.a.pq_train]
        for M in self.a.pq_ms:
            if d % M:
                print(f"# skipping M={M}: dim {d} is not divisible by it", flush=True)
                continue
            self.build_threads()
            t0 = time.perf_counter()
            index = faiss.index_factory(d, f"OPQ{M},PQ{M}", self.faiss_metric)
            index.train(train)
            index.add(self.xb)
            build_s = time.perf_counter() - t0
            nbytes = self.index_bytes(index)
            print(f"# OPQ{M},PQ{M}: built in {build_s:.1f} s (trained on {len(train)} rows)", flush=True)
            self.search_threads()
            # Flat PQ scans every code: d*d rotation + 256*d tables + n*M table adds.
            base_flops = d * d + 256 * d + self.n * M
            ids, qps, qps1, p50, p99, _ = self.measure(lambda q: index.search(q, k)[1])
            self.emit("faiss-opq-flat", {"M": M, "rerank": 0}, ids, qps, qps1, p50, p99, build_s, nbytes, base_flops, peer)
            refine = faiss.IndexRefineFlat(index, faiss.swig_ptr(self.xb))
            kf = max(1, 100 // k)
            refine.k_factor = float(kf)
            ids, qps, qps1, p50, p99, _ = self.measure(lambda q: refine.search(q, k)[1])
            self.emit("faiss-opq-flat", {"M": M, "rerank": kf * k}, ids, qps, qps1, p50, p99, build_s, nbytes,
                      base_flops + kf * k * d, peer)
            del refine, index

    def run_hnsw(self):
        faiss = self.faiss
        peer = "faiss " + faiss.__version__
        self.build_threads()
        t0 = time.perf_counter()
        index = faiss.IndexHNSWFlat(self.dim, self.a.hnsw_m, self.faiss_metric)
        index.hnsw.efConstruction = self.a.ef_construction
        index.add(self.xb)
        build_s = time.perf_counter() - t0
        nbytes = self.index_bytes(index)
        self.search_threads()
        hs = faiss.cvar.hnsw_stats
        for ef in self.a.faiss_ef:
            index.hnsw.efSearch = ef
            ids, qps, qps1, p50, p99, ndis = self.measure(
                lambda q: index.search(q, self.k)[1],
                before=hs.reset, after=lambda: (hs.ndis or hs.n3) / self.nq)
            self.emit("faiss-hnsw", {"M": self.a.hnsw_m, "efc": self.a.ef_construction, "ef": ef}, ids, qps, qps1,
                      p50, p99, build_s, nbytes, ndis * self.dim, peer, ndis=ndis)

    def run_hnswlib(self):
        import hnswlib
        np = self.np
        version = getattr(hnswlib, "__version__", None)
        if version is None:
            try:
                from importlib.metadata import version as pkg_version
                version = pkg_version("hnswlib")
            except Exception:
                version = "?"
        peer = "hnswlib " + version
        space = "ip" if self.use_ip else "l2"  # cosine: vectors were normalised at load
        t0 = time.perf_counter()
        p = hnswlib.Index(space=space, dim=self.dim)
        p.init_index(max_elements=self.n, ef_construction=self.a.ef_construction, M=self.a.hnsw_m,
                     random_seed=self.a.seed)
        p.set_num_threads(self.a.build_threads)
        p.add_items(self.xb, np.arange(self.n), num_threads=self.a.build_threads)
        build_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as td:
            fn = os.path.join(td, "hnswlib.bin")
            p.save_index(fn)
            nbytes = os.path.getsize(fn)
        p.set_num_threads(self.a.threads)
        t = self.a.threads
        for ef in self.a.hnswlib_ef:
            p.set_ef(max(ef, self.k))
            ids, qps, qps1, p50, p99, _ = self.measure(
                lambda q: p.knn_query(q, k=self.k, num_threads=t)[0].astype(np.int64))
            # hnswlib exposes no distance-evaluation count: flops_per_query is null.
            self.emit("hnswlib", {"M": self.a.hnsw_m, "efc": self.a.ef_construction, "ef": ef}, ids, qps, qps1,
                      p50, p99, build_s, nbytes, None, peer)

    def run(self, method):
        print(f"## {method}", flush=True)
        print(self.HEADER, flush=True)
        if method == "flat":
            self.run_flat()
        elif method == "faiss-ivfflat":
            self.run_ivfflat()
        elif method in ("faiss-ivfpq", "faiss-ivfpq-rf", "faiss-opq", "faiss-opq-rf"):
            opq = method.startswith("faiss-opq")
            rf = method.endswith("-rf")
            # When both the plain and the -rf variant are asked for, build the index once.
            twin = method[:-3] if rf else method + "-rf"
            if twin in self.a.method_list and rf:
                return  # already measured together with the plain variant
            self._pq_family(opq, plain=not rf or twin in self.a.method_list,
                            rf=rf or twin in self.a.method_list)
        elif method in ("faiss-ivfpqfs-rf", "faiss-opqfs-rf"):
            self._pq_family(method.startswith("faiss-opq"), plain=False, rf=True, fastscan=True)
        elif method == "faiss-opq-flat":
            self.run_opq_flat()
        elif method == "faiss-hnsw":
            self.run_hnsw()
        elif method == "hnswlib":
            self.run_hnswlib()


def main():
    args = parse_args()
    reexec_with_openblas(args.threads)
    import numpy as np
    import faiss

    faiss.omp_set_num_threads(args.threads)
    t0 = time.perf_counter()
    xb = np.ascontiguousarray(read_matrix(args.base, np.float32, args.max_base))
    xq = np.ascontiguousarray(read_matrix(args.queries, np.float32, args.max_queries))
    n, dim = xb.shape
    nq = xq.shape[0]
    if xq.shape[1] != dim:
        raise SystemExit(f"queries have {xq.shape[1]} dims, base has {dim}")
    if args.metric == "cosine":
        faiss.normalize_L2(xb)
        faiss.normalize_L2(xq)
    use_ip = args.metric in ("ip", "cosine")

    if args.gt and args.max_base is None:
        gt = read_matrix(args.gt, np.int64, args.max_queries)
        if gt.shape[0] < nq or gt.shape[1] < args.k:
            raise SystemExit(f"ground truth {args.gt} is {gt.shape[0]}x{gt.shape[1]}; need {nq}x{args.k}")
        gt_note = f"gt from {args.gt}"
    else:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        exact = faiss.IndexFlatIP(dim) if use_ip else faiss.IndexFlatL2(dim)
        exact.add(xb)
        _, gt = exact.search(xq, min(100, n))
        faiss.omp_set_num_threads(args.threads)
        gt_note = "exact gt computed" + (" (--max-base: --gt ignored)" if args.gt else "")
    print(f"data: {os.path.basename(args.base)} n={n} dim={dim} nq={nq} metric={args.metric} k={args.k} "
          f"threads={args.threads} build-threads={args.build_threads} faiss={faiss.__version__} "
          f"({gt_note}; loaded in {time.perf_counter() - t0:.1f} s)", flush=True)

    runner = Runner(args, np, faiss, xb, xq, gt)
    for method in args.method_list:
        runner.run(method)
    if runner.out:
        runner.out.close()
        print(f"wrote {len(runner.results)} operating points to {args.out}")


if __name__ == "__main__":
    main()
