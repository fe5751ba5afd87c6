#!/usr/bin/env python3
"""bench/summarize.py - turns the JSON results of bench/compare.sh into summary.md and
latency.dat (for latency.gp). Usage: summarize.py RESULTS_DIR

Files are named <case>.<target>.<run>.json (target: herald, rabbitmq, raw). Each figure is
the median over the runs; ratios are Herald / other, so above 1 means Herald has more of
that figure (good for rates, bad for CPU-s per million or latency). A saturating case run
at several windows is named <case>@w<deliveries in flight>; each target is reported at the
window that gave it the most deliveries per server CPU-second (median)."""

import glob
import json
import os
import statistics
import sys

TARGETS = ("herald", "rabbitmq", "raw")


def load(outdir):
    res = {}
    for path in sorted(glob.glob(os.path.join(outdir, "*.json"))):
        name = os.path.basename(path)[:-5]
        try:
            case, target, run = name.rsplit(".", 2)
            with open(path) as f:
                res.setdefault(case, {}).setdefault(target, []).append(json.load(f))
        except (ValueError, json.JSONDecodeError):
            continue
    return res


def get(d, key):
    for k in key.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def med(runs, key):
    vals = [get(r, key) for r in runs or [] if not r.get("aborted")]
    vals = [v for v in vals if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "—"
    if unit == "ms":
        return "%.3f" % (v / 1000.0) if v < 10000 else "%.0f" % (v / 1000.0)
    if unit == "KiB":
        return "%.2f" % (v / 1024.0)
    if abs(v) >= 1e6:
        return "%.2fM" % (v / 1e6)
    if abs(v) >= 1e4:
        return "%.1fk" % (v / 1e3)
    if abs(v) >= 100:
        return "%.0f" % v
    return "%.3g" % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    if r >= 100:
        return "%.0f×" % r
    if r >= 10:
        return "%.1f×" % r
    if r >= 0.1:
        return "%.2f×" % r
    return "%.2g×" % r


SAT_ROWS = [
    ("deliveries/s", "del_rate", ""),
    ("published msgs/s", "pub_rate", ""),
    ("server CPU-s per million deliveries", "cpu_s_per_million", ""),
    ("deliveries per server CPU-second", "deliveries_per_cpu_s", ""),
    ("server CPU use (cores)", "_cpu_cores", ""),
    ("latency p50 at saturation (ms)", "latency_us.p50", "ms"),
    ("latency p99 at saturation (ms)", "latency_us.p99", "ms"),
    ("lost / order violations / errors (sum over runs)", "_checks", ""),
]

CONN_ROWS = [
    ("connections held", "ready", ""),
    ("STOMP CONNECTED/s", "connect_rate", ""),
    ("connections set up (subscribed)/s", "ready_rate", ""),
    ("server RSS per connection (KiB)", "rss_per_conn", "KiB"),
    ("server CPU per connection set-up (µs)", "setup_cpu_us_per_conn", ""),
    ("kernel slab per connection, both ends (KiB)", "kernel_slab_per_conn", "KiB"),
]


def pick_windows(res):
    """Folds <case>@w<N> into <case>, keeping for each target the best window's runs."""
    out, chosen = {}, {}
    for name, per in res.items():
        if "@w" not in name:
            out[name] = per
            continue
        base, win = name.split("@w", 1)
        for target, runs in per.items():
            score = med(runs, "deliveries_per_cpu_s") or med(runs, "del_rate") or 0
            best = chosen.setdefault(base, {}).get(target)
            if best is None or score > best[1]:
                chosen[base][target] = (int(win), score)
                out.setdefault(base, {})[target] = runs
    return out, {b: {t: w for t, (w, _) in per.items()} for b, per in chosen.items()}


def derived(runs):
    for r in runs or []:
        s = r.get("server") or {}
        if s.get("wall_s"):
            r["_cpu_cores"] = s.get("cpu_s", 0) / s["wall_s"]


def checks(runs):
    if not runs:
        return "—"
    return "%d / %d / %d" % (sum(r.get("lost", 0) for r in runs),
                             sum(r.get("order_violations", 0) for r in runs),
                             sum(r.get("errors", 0) for r in runs))


def table(case, per, rows, lines, windows=None):
    has_raw = "raw" in per
    head = "| %s | Herald | RabbitMQ | Herald/RabbitMQ |" % case
    sep = "|---|---:|---:|---:|"
    if has_raw:
        head += " raw ceiling | Herald/raw |"
        sep += "---:|---:|"
    lines += [head, sep]
    if windows:
        w = [windows.get(t) for t in TARGETS]
        line = "| best window (deliveries in flight) | %s | %s | |" % (fmt(w[0]), fmt(w[1]))
        if has_raw:
            line += " %s | |" % fmt(w[2])
        lines.append(line)
    for label, key, unit in rows:
        if key == "_checks":
            cells = [checks(per.get(t)) for t in TARGETS]
            line = "| %s | %s | %s | |" % (label, cells[0], cells[1])
            if has_raw:
                line += " %s | |" % cells[2]
            lines.append(line)
            continue
        h, q, w = (med(per.get(t), key) for t in TARGETS)
        line = "| %s | %s | %s | %s |" % (label, fmt(h, unit), fmt(q, unit), ratio(h, q))
        if has_raw:
            line += " %s | %s |" % (fmt(w, unit), ratio(h, w))
        lines.append(line)
    lines.append("")


def latency(res, lines, outdir):
    cases = sorted((c for c in res if c.startswith("latency-")), key=lambda c: float(c[8:]))
    if not cases:
        return
    keys = ("p50", "p90", "p99", "p999", "max")
    lines += ["### latency at a fixed offered load (1 publisher → /topic/bench → 10 subscribers)", "",
              "| offered deliveries/s | Herald p50 | p99 | p99.9 | max | RabbitMQ p50 | p99 | p99.9 | max "
              "| raw p50 | p99 | p99.9 | delivered/offered H / R |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    with open(os.path.join(outdir, "latency.dat"), "w") as dat:
        dat.write("# offered_deliveries_per_s herald_p50 p90 p99 p999 rabbit_p50 p90 p99 p999 "
                  "raw_p50 p90 p99 p999 (ms)\n")
        for c in cases:
            per = res[c]
            offered = float(c[8:]) * 10
            hv, qv, wv = ([med(per.get(t), "latency_us." + k) for k in keys] for t in TARGETS)
            hd, qd = med(per.get("herald"), "del_rate"), med(per.get("rabbitmq"), "del_rate")
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
                fmt(offered), fmt(hv[0], "ms"), fmt(hv[2], "ms"), fmt(hv[3], "ms"), fmt(hv[4], "ms"),
                fmt(qv[0], "ms"), fmt(qv[2], "ms"), fmt(qv[3], "ms"), fmt(qv[4], "ms"),
                fmt(wv[0], "ms"), fmt(wv[2], "ms"), fmt(wv[3], "ms"),
                "%.2f" % (hd / offered) if hd else "—", "%.2f" % (qd / offered) if qd else "—"))
            cols = [offered] + [v / 1000.0 if v is not None else float("nan")
                                for v in hv[:4] + qv[:4] + wv[:4]]
            dat.write(" ".join("%g" % x for x in cols) + "\n")
    lines += ["", "Latency in ms, end to end (the publisher's scheduled send time to the subscriber's "
              "read), medians over the runs; raw is the relay of bench_raw.c, the floor of this "
              "client and kernel on this box. ![latency vs load](latency.png)", ""]


def targets(res, lines):
    """The issue's targets for Herald, checked against the medians."""
    def m(case, key, t="herald"):
        return med(res.get(case, {}).get(t), key)

    rows = []

    def add(what, val, ok, shown):
        rows.append("| %s | %s | %s |" % (what, shown, "—" if val is None else ("yes" if ok else "**no**")))

    v = m("fanout-100", "cpu_s_per_million")
    add("fan-out 1→100: ≤ 0.2 CPU-s per million deliveries", v, v is not None and v <= 0.2, fmt(v))
    h, q = m("fanout-100", "deliveries_per_cpu_s"), m("fanout-100", "deliveries_per_cpu_s", "rabbitmq")
    r = h / q if h and q else None
    add("fan-out 1→100: ≥ 180× RabbitMQ's deliveries per CPU-s", r, r is not None and r >= 180, ratio(h, q))
    v = m("fanout-1000", "cpu_s_per_million")
    add("fan-out 1→1000: ≤ 0.5 CPU-s per million deliveries", v, v is not None and v <= 0.5, fmt(v))
    for c in ("fanout-100", "fanout-1000"):
        h, w = m(c, "del_rate"), m(c, "del_rate", "raw")
        r = h / w if h and w else None
        add("%s: ≥ 60%% of the raw ceiling's deliveries/s" % c, r, r is not None and r >= 0.6,
            "%.0f%%" % (100 * r) if r else "—")
    for c in ("queues-1000", "queues-10000"):
        v = m(c, "cpu_s_per_million")
        add("%s, 4 producers: ≤ 4 CPU-s per million messages" % c, v, v is not None and v <= 4, fmt(v))
    for rate, label in (("1000", "10k"), ("10000", "100k")):
        c = "latency-" + rate
        p99, p999 = m(c, "latency_us.p99"), m(c, "latency_us.p999")
        add("p99 < 1 ms at %s deliveries/s" % label, p99, p99 is not None and p99 < 1000, fmt(p99, "ms") + " ms")
        add("p99.9 < 5 ms at %s deliveries/s" % label, p999, p999 is not None and p999 < 5000,
            fmt(p999, "ms") + " ms")
    v = m("connections", "rss_per_conn")
    add("idle subscribed connection: < 2 KiB of server RSS", v, v is not None and v < 2048,
        fmt(v, "KiB") + " KiB")
    v = m("connections", "connect_rate")
    add("≥ 15,000 connections/s established", v, v is not None and v >= 15000, fmt(v) + "/s")
    lines += ["### Herald against the issue's targets", "", "| target | Herald | met |", "|---|---:|:---:|"]
    lines += rows + [""]


def main():
    outdir = sys.argv[1]
    res, windows = pick_windows(load(outdir))
    for per in res.values():
        for runs in per.values():
            derived(runs)
    lines = ["# Herald vs RabbitMQ — %s" % os.path.basename(os.path.normpath(outdir)), ""]
    mpath = os.path.join(outdir, "machine.txt")
    if os.path.exists(mpath):
        lines += ["```", open(mpath).read().strip(), "```", ""]
    lines += ["Medians over the runs. Ratios are Herald ÷ other: above 1 is better for rates, "
              "below 1 is better for CPU-s per million, latency and memory.", ""]
    targets(res, lines)
    order = ["fanout-100", "fanout-1000", "fanout-100-ws", "queues-1000", "queues-10000", "queues-1000-ack"]
    for c in order + sorted(c for c in res if c not in order and not c.startswith("latency-")
                            and c != "connections"):
        if c in res:
            table(c, res[c], SAT_ROWS, lines, windows.get(c))
    if "connections" in res:
        table("connections", res["connections"], CONN_ROWS, lines)
    latency(res, lines, outdir)
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
