#!/usr/bin/env python3
"""Runs the asproc benchmark suite and prints its figures.

    run.py [--quick] [--build DIR] [--lib FILE] [--only NAME,...]
           [--pairs N] [--save FILE]

Each suite (see suites.py) runs its variants interleaved, one round after
another (A B A B ...), each run a fresh process. A suite's RESULT line per
variant is the median over rounds; each comparison's RATIO line is the
median, min and max of the per-round ratios, so drift between rounds
cancels. Latency suites pool their samples for the RESULT percentiles and
take one p99 per round for the RATIO spread.

Peers that are missing are skipped and said so (SKIP lines). A peer run
that fails, or whose bytes do not match, makes the run exit 1; --quick
checks bytes only and is what CI runs.
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
import suites  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# The CPUs this process may use; placements "CPU 0" and "CPU 1" mean the
# first and second of them (on one CPU, both mean the same one).
CPUS = sorted(os.sched_getaffinity(0))
CPUS = CPUS[:2] if len(CPUS) > 1 else CPUS * 2
EXIT_MISMATCH = 2


class Log:
    """Prints lines and keeps them for --save."""

    def __init__(self):
        self.lines = []

    def say(self, line):
        print(line, flush=True)
        self.lines.append(line)

    def save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(self.lines) + "\n")


def find_peers(build, lib, log):
    """Returns {peer: argv prefix} for the peers that can run, printing a
    SKIP line for each one that cannot."""
    bdir = os.path.join(build, "bench")
    for need in ("writer", "peer_raw"):
        if not os.access(os.path.join(bdir, need), os.X_OK):
            sys.exit(f"run.py: {bdir}/{need} missing: build it with "
                     "`make bench-quick` or `make bench`")
    peers = {"raw": [os.path.join(bdir, "peer_raw")]}
    uv = os.path.join(bdir, "peer_uv")
    if os.access(uv, os.X_OK):
        peers["uv"] = [uv]
    else:
        log.say(f"SKIP libuv: {uv} not built (pkg-config finds no libuv; "
                "`make bench-deps` installs libuv1-dev)")
    py = os.environ.get("BENCH_PYTHON", sys.executable or "python3")
    try:
        ok = subprocess.run([py, "-c", "import asyncio"],
                            capture_output=True).returncode == 0
    except OSError:
        ok = False
    if ok:
        peers["asyncio"] = [py, os.path.join(HERE, "peer_asyncio.py")]
    else:
        log.say(f"SKIP asyncio: no Python 3 with asyncio at {py} "
                "(`make bench-deps` installs python3)")
    asp = os.path.join(bdir, "peer_asproc")
    if not os.path.exists(lib):
        log.say(f"SKIP asproc: {lib} missing")
    elif not os.access(asp, os.X_OK):
        log.say(f"SKIP asproc: {asp} not built (run `make bench`)")
    else:
        peers["asproc"] = [asp]
    return peers, os.path.join(bdir, "writer")


def peer_argv(peers, writer, suite, variant, cfg):
    """The command line of one run of variant in suite."""
    name, peer, mode, extra = variant
    argv = peers[peer] + [mode, "--variant", name]
    if peer == "asyncio":
        argv += ["--writer", writer]
    if suite.cpu >= 0:
        argv += ["--cpu", str(CPUS[suite.cpu])]
    if suite.child_cpu >= 0:
        argv += ["--child-cpu", str(CPUS[suite.child_cpu])]
    argv += ["--chunk", str(cfg["chunk"])]
    if cfg["verify"]:
        argv.append("--verify")
    flags = {"transport": "--transport", "size": "--size",
             "count": "--count", "heap_mib": "--heap-mib",
             "conc": "--conc"}
    for key, value in extra.items():
        argv += [flags[key], str(value)]
    return argv


def run_once(argv, timeout):
    """Runs one peer process. Returns (stdout lines, error text or None).
    A peer that cannot run a variant here (a limit of this machine) says
    so with a SKIP line and exits 0."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], f"timed out after {timeout} s"
    except OSError as e:
        return [], str(e)
    if p.returncode == EXIT_MISMATCH:
        return [], "BYTES DIFFER: " + p.stderr.strip()
    if p.returncode != 0:
        return [], f"exit {p.returncode}: {p.stderr.strip()[-400:]}"
    return p.stdout.splitlines(), None


def parse(lines, suite, name):
    """Picks this variant's figures out of a peer's output: {key: value}
    from RESULT lines, and the list of SAMPLE values."""
    figures, samples = {}, []
    for line in lines:
        f = line.split()
        if len(f) == 5 and f[0] == "RESULT" and f[2] == name:
            figures[f[1]] = float(f[3])
        elif len(f) == 4 and f[0] == "SAMPLE" and f[1] == suite.key:
            samples.append(float(f[3]))
    return figures, samples


def pct(values, p):
    """Nearest-rank percentile p (0-100) of values."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


def peer_notes(out, tag, log, seen):
    """Logs the NOTE and SKIP lines of a peer's output (each text once per
    run); returns whether the peer skipped the variant."""
    skipped = False
    for line in out:
        if line.startswith(("NOTE ", "SKIP ")):
            skipped = skipped or line.startswith("SKIP ")
            if line not in seen:
                seen.add(line)
                log.say(f"# {tag}: {line}")
    return skipped


def run_suite(suite, peers, writer, cfg, log, failures):
    """Runs suite's rounds. Returns {figure name: [value per round]} where
    a figure is 'variant' (or 'variant-rss', 'variant-p50', ...), and the
    pooled samples per variant."""
    per_round, pooled, seen = {}, {}, set()
    variants = [v for v in suite.variants if v[1] in peers]
    for r in range(suite.rounds):
        for v in variants:
            name = v[0]
            out, err = run_once(peer_argv(peers, writer, suite, v, cfg),
                                cfg["timeout"])
            tag = f"[{suite.name} {r + 1}/{suite.rounds}] {name}"
            if err:
                failures.append(f"{suite.name} {name}: {err}")
                log.say(f"# {tag}: FAIL {err}")
                continue
            if peer_notes(out, tag, log, seen):
                continue
            figures, samples = parse(out, suite, name)
            got = {}
            if suite.samples:
                pooled.setdefault(name, []).extend(samples)
                if samples:
                    got[name + "-p50"] = pct(samples, 50)
                    got[name + "-p99"] = pct(samples, 99)
            elif suite.key in figures:
                got[name] = figures[suite.key]
                for key, (suffix, _) in suite.extras.items():
                    if key in figures:
                        got[name + suffix] = figures[key]
            if not got:
                failures.append(f"{suite.name} {name}: no figure printed")
            for k, val in got.items():
                per_round.setdefault(k, [None] * suite.rounds)[r] = val
            shown = " ".join(f"{k}={val:.4g}" for k, val in got.items())
            log.say(f"# {tag}: {shown} {suite.unit}")
    return per_round, pooled


def split_extra(suite, name):
    """(RESULT key, variant, unit) of a figure name: 'asproc-c8-cpu' of
    the jobs suite is the jobs-cpu figure of asproc-c8, 'asproc-c8' the
    jobs figure itself."""
    for key, (suffix, unit) in suite.extras.items():
        if name.endswith(suffix):
            return key, name[:-len(suffix)], unit
    return suite.bench, name, suite.unit


def report(suite, per_round, pooled, results):
    """Appends the RESULT, RATIO and bar lines of suite to results."""
    if suite.samples:
        for name, samples in pooled.items():
            for p in (50, 99):
                results.append(f"RESULT {suite.bench} {name}-p{p} "
                               f"{pct(samples, p):.6g} us")
    else:
        for name, vals in per_round.items():
            vals = [v for v in vals if v is not None]
            if not vals:
                continue
            key, base, unit = split_extra(suite, name)
            results.append(f"RESULT {key} {base} "
                           f"{statistics.median(vals):.6g} {unit}")
    for a, b, bar, invert in suite.ratios:
        bench, a_name, _ = split_extra(suite, a)
        b_name = split_extra(suite, b)[1]
        if invert:
            bench += "-slowdown"
        a_vals = per_round.get(a)
        if b.endswith("ms") and b[:-2].isdigit():
            b_vals = [1000.0 * int(b[:-2])] * suite.rounds
        elif b == "captured":
            b_vals = [1.0] * suite.rounds
        else:
            b_vals = per_round.get(b)
        label = f"{bench} {a_name}/{b_name}"
        if not a_vals or not b_vals:
            results.append(f"# SKIP RATIO {label}: a side did not run")
            continue
        ratios = [(y / x if invert else x / y) for x, y in zip(a_vals, b_vals)
                  if x is not None and y is not None and x > 0 and y > 0]
        if not ratios:
            results.append(f"# SKIP RATIO {label}: no paired figures")
            continue
        if bar:
            results.append(f"# bar {label} {bar}")
        results.append(f"RATIO {label} {statistics.median(ratios):.4g} "
                       f"{min(ratios):.4g} {max(ratios):.4g}")


def skips(log):
    """The SKIP lines said so far, repeated next to the figures so what
    did not run is read together with what did."""
    return [line for line in log.lines if line.startswith("SKIP ")]


def header(log, cfg, quick):
    """Says when, where and at which sizes the run happened."""
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    log.say(f"# date {now}")
    log.say(f"# machine {platform.node()} {platform.system()} "
            f"{platform.release()} {cpu} x{os.cpu_count()}")
    log.say(f"# mode {'quick (bytes checked, speed not meaningful)' if quick else 'full'}")
    log.say(f"# placements: split = parent CPU {CPUS[0]}, child CPU "
            f"{CPUS[1]}; same = both CPU {CPUS[0]}")
    if CPUS[0] == CPUS[1]:
        log.say("SKIP split placement: only one CPU, split runs as same")
    log.say(f"# sizes: throughput {cfg['tput']} B (asyncio "
            f"{cfg['tput_asyncio']} B), lines {cfg['lines']} x 64 B "
            f"(asyncio {cfg['lines_asyncio']}), capture {cfg['capture']} B "
            f"(asyncio {cfg['capture_asyncio']} B), jobs {cfg['jobs']} x "
            f"{cfg['job_size']} B to stdout and stderr (libuv "
            f"{cfg['jobs_libuv']}, asyncio {cfg['jobs_asyncio']}), capseq "
            f"{cfg['capseq']} x "
            f"{cfg['capseq_size']} B, many {cfg['many']} children; ratios "
            "are of rates, so sizes may differ")


def main():
    """Parses options, runs the suites, prints the figures last."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build", default="build")
    ap.add_argument("--lib", default=None)
    ap.add_argument("--only", default="")
    ap.add_argument("--pairs", type=int, default=0)
    ap.add_argument("--save", default="")
    args = ap.parse_args()
    cfg = dict(suites.QUICK if args.quick else suites.FULL)
    if args.pairs > 0:
        for k in ("pairs", "spawn_pairs", "capture_pairs", "conc_pairs",
                  "timer_blocks", "jobs_pairs", "many_pairs",
                  "capseq_pairs"):
            cfg[k] = args.pairs
    log = Log()
    header(log, cfg, args.quick)
    lib = args.lib or os.path.join(args.build, "libasproc.a")
    peers, writer = find_peers(args.build, lib, log)
    only = set(filter(None, args.only.split(",")))
    failures, results = [], []
    all_suites = suites.suites(cfg)
    for note in suites.NOTES:
        log.say(f"# note {note}")
    for suite in all_suites:
        if only and suite.name not in only and suite.bench not in only:
            continue
        per_round, pooled = run_suite(suite, peers, writer, cfg, log,
                                      failures)
        report(suite, per_round, pooled, results)
    for line in skips(log):
        log.say(line)
    for f in failures:
        log.say(f"FAIL {f}")
    for line in results:
        log.say(line)
    if args.save:
        log.save(args.save)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
