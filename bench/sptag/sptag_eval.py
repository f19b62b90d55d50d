#!/usr/bin/python3
"""Scores one SPTAG SPANN search run for run_sptag.sh: recall@k of its result file against the
exact ground truth, and the figures SPTAG's own log and /usr/bin/time -v report. Prints one CSV row.

Usage: sptag_eval.py RESULT.bin GT.ivecs BASE.[bf]vecs QUERY.[bf]vecs K SEARCH.log TIME.log LABEL...

SPTAG's SearchResult file (SSDServing, binary): int32 query count, int32 k, then per query k pairs
of (int32 id, float32 distance). Recall: ids found in the first k ids of gt.ivecs; tie-aware
recall: results whose exact L2 distance is <= that of the k-th true neighbour.
"""
import re
import sys

import numpy as np


def read_vecs(path):
    dtype = {"bvecs": np.uint8, "fvecs": np.float32, "ivecs": np.int32}[path.rsplit(".", 1)[1]]
    raw = np.fromfile(path, dtype=np.uint8)
    dim = int(raw[:4].view(np.int32)[0])
    rec = 4 + dim * np.dtype(dtype).itemsize
    if raw.size % rec:
        sys.exit(f"{path}: size {raw.size} is not a multiple of the record size {rec}")
    return raw.reshape(-1, rec)[:, 4:].copy().view(dtype)


def distribution(log, title):
    """(avg, p50, p90, p95, p99, p99.9, max) of a SPTAG 'title Distribution' table, or Nones."""
    m = re.search(re.escape(title) + r" Distribution:\s*\n.*?Avg.*?\n(?:\[\d+\]\s*)?([^\n]+)", log)
    if not m:
        return [None] * 7
    return [float(x) for x in m.group(1).split()]


def main():
    result, gt_path, base_path, query_path, k, search_log, time_log = sys.argv[1:8]
    labels = sys.argv[8:]
    k = int(k)
    raw = np.fromfile(result, dtype=np.uint8)
    nq, rk = (int(x) for x in raw[:8].view(np.int32))
    pairs = raw[8:8 + nq * rk * 8].view(np.int32).reshape(nq, rk, 2)
    ids = pairs[:, :k, 0].astype(np.int64)
    gt = read_vecs(gt_path)[:nq, :k].astype(np.int64)
    base = read_vecs(base_path)
    queries = read_vecs(query_path)[:nq].astype(np.float64)

    hits = sum(len(set(ids[q][ids[q] >= 0]) & set(gt[q])) for q in range(nq))
    kth = ((base[gt[:, k - 1]].astype(np.float64) - queries) ** 2).sum(axis=1)
    valid = ids >= 0
    safe = np.where(valid, ids, 0)
    dist = ((base[safe].astype(np.float64) - queries[:, None, :]) ** 2).sum(axis=2)
    ties = int(((dist <= kth[:, None]) & valid).sum())

    log = open(search_log, errors="replace").read()
    tlog = open(time_log, errors="replace").read()
    qps = re.findall(r"actuallQPS is ([0-9.]+)", log)
    lat = distribution(log, "Total Latency")
    pages = distribution(log, "Total Disk Page Access")
    ios = distribution(log, "Total Disk IO")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tlog)
    row = labels + [
        f"{hits / (nq * k):.4f}", f"{ties / (nq * k):.4f}",
        qps[-1] if qps else "",  # the last QPS line is the measured search, after the warm-up
        lat[0], lat[1], lat[4], pages[0], pages[4], ios[0],
        f"{int(rss.group(1)) / 1024:.1f}" if rss else "",
        nq,
    ]
    print(",".join("" if v is None else str(v) for v in row))


if __name__ == "__main__":
    main()
