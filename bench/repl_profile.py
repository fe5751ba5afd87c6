"""
bench/repl_profile.py - where R=2 spends its extra CPU: reads the perf profiles that
`PERF=1 MODES=sat bash bench/replication.sh` leaves (perf.r<R>.<round>.data, perf record -g
of all three nodes over the measured window of each saturating run) and prints, in
CPU-milliseconds per million messages (perf's cpu-clock samples / frequency / messages
delivered in the profiled window):

  - per node and thread kind (route thread, shards and the rest), R=1 against R=2;
  - per bucket of functions (kernel socket copies, scheduler, hand-offs between threads,
    link encoding, allocation, replication bookkeeping, name lookups);
  - the functions whose cost grew most from R=1 to R=2.

  /usr/bin/python3 bench/repl_profile.py RESULTS_DIR [PERF_FREQ] [WINDOW_S]

PERF_FREQ (999) and WINDOW_S (DURATION - 1 of the run: 7) must match the run's. Needs perf.
"""
import collections
import glob
import json
import os
import re
import subprocess
import sys

KERNEL = [("kernel: socket copies", r"_copy_from_iter|_copy_to_iter|copy_user"),
          ("kernel: scheduler, wake-ups", r"finish_task_switch|schedule|try_to_wake_up|"
           r"_raw_spin_unlock_irq|futex|enqueue_task|dequeue_task|select_task|update_"),
          ("kernel: the rest (TCP, io_uring, softirq)", r".*")]
USER = [("user: malloc, free, refcounts", r"^(malloc|free|_int_free|_int_malloc|hmsg_unref|"
         r"hmsg_release_cb|hmsg_ref|hd_alloc|hd_free|xname_)"),
        ("user: hand-offs between threads", r"^(xpark_|xring_|shard_send|route_send_to_shard|"
         r"xwake|pthread_mutex)"),
        ("user: link encode, decode, write", r"^(link_|route_link|net_send_fill|net_conn_write|"
         r"net_conn_out|op_to_peer|route_queue_from_link|net_loop_out|route_)"),
        ("user: replication bookkeeping", r"^(repl_|replica_|mdeque_|find_rseq|from_owner|"
         r"backups_of|placement_)"),
        ("user: queue lookups by name", r"^(strmap_|__memcmp|memcmp|hd_hash|XXH)"),
        ("user: the rest", r".*")]
LINE = re.compile(r"\s*[\d.]+%\s+(\d+)\s+(\d+):(\S+)\s+\[(.)\]\s+(.*)$")


def profile(path, pids, per_million):
    """(node-thread, bucket, symbol) -> CPU-ms per million messages."""
    out = subprocess.run(["perf", "report", "-i", path, "--no-children", "-g", "none", "-n",
                          "--sort", "pid,sym", "-q", "--stdio"],
                         capture_output=True, text=True, check=False).stdout
    c = collections.Counter()
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        n, tid, comm, kind, sym = int(m[1]), int(m[2]), m[3], m[4], m[5].strip()
        node = "ABC"[max(i for i, p in enumerate(pids) if p <= tid)]
        where = f"{node} {'route' if comm == 'route' else 'shards+rest'}"
        bucket = next(b for b, rx in (KERNEL if kind == "k" else USER) if re.search(rx, sym))
        c[("thread", where)] += n * per_million
        c[("bucket", bucket)] += n * per_million
        c[("sym", sym)] += n * per_million
    return c


def main():
    d = sys.argv[1]
    freq = float(sys.argv[2]) if len(sys.argv) > 2 else 999
    window = float(sys.argv[3]) if len(sys.argv) > 3 else 7
    prof = {}
    for f in sorted(glob.glob(os.path.join(d, "perf.r*.*.data"))):
        rr, r = re.match(r"perf\.r(\d)\.(\d+)\.data$", os.path.basename(f)).groups()
        j = json.load(open(os.path.join(d, f"sat.r{rr}.{r}.json")))
        msgs_m = j["del_rate"] * window / 1e6
        prof[(int(rr), int(r))] = profile(f, j["server"]["pids"], 1000 / freq / msgs_m)
    rounds = sorted({r for _, r in prof if (1, r) in prof and (2, r) in prof})
    cols = [(rr, r) for r in rounds for rr in (1, 2)]

    def table(kind, keys):
        print(f"{'CPU-ms per million messages':42}" + "".join(f"{f'R{rr} #{r}':>8}" for rr, r in cols) +
              f"{'R2-R1':>8}")
        for k in keys:
            v = [prof[c][(kind, k)] for c in cols]
            dl = sum(prof[(2, r)][(kind, k)] - prof[(1, r)][(kind, k)] for r in rounds) / len(rounds)
            print(f"{k[:42]:42}" + "".join(f"{x:8.0f}" for x in v) + f"{dl:+8.0f}")
        print()

    threads = sorted({k[1] for c in prof.values() for k in c if k[0] == "thread"})
    table("thread", threads)
    table("bucket", [b for b, _ in USER + KERNEL])
    syms = {k[1] for c in prof.values() for k in c if k[0] == "sym"}
    grew = sorted(syms, key=lambda s: -sum(prof[(2, r)][("sym", s)] - prof[(1, r)][("sym", s)]
                                           for r in rounds))
    table("sym", grew[:25])
    tot = {c: sum(v for k, v in prof[c].items() if k[0] == "thread") for c in cols}
    print("total CPU-ms per million: " + ", ".join(f"R{rr} #{r} {tot[(rr, r)]:.0f}" for rr, r in cols))


main()
