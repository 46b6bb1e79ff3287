"""What the benchmark suite runs: sizes, variants, comparisons and bars.

The table mirrors the bar table of the benchmark method: every RATIO that
has a bar names it here, and bench/run.py prints one RATIO line for each
comparison whose two sides both ran.
"""

import resource

GIB = 1 << 30
MIB = 1 << 20

# What building the suites had to adapt to this machine (run.py logs them).
NOTES = []

# Sizes per mode. asyncio gets smaller sizes in the full run so the suite
# fits its time budget; every figure is a rate, so ratios stay comparable.
FULL = {
    "pairs": 7, "spawn_pairs": 7, "capture_pairs": 5, "conc_pairs": 5,
    "timer_blocks": 5,
    "tput": 2 * GIB, "tput_asyncio": 256 * MIB,
    "lines": 20_000_000, "lines_asyncio": 1_000_000,
    "capture": 512 * MIB, "capture_asyncio": 128 * MIB,
    "forward": 2 * GIB,
    "spawns": 2000, "heap_mib": 2048,
    "children": 1000, "child_size": MIB,
    "timer_samples": 1000, "escalations": 1000,
    "trees": 60, "contain_spawns": 1000,
    "capseq_pairs": 3, "capseq": 1000, "capseq_size": MIB,
    "jobs_pairs": 3, "jobs": 10_000, "jobs_libuv": 5000, "jobs_asyncio": 1000,
    "job_size": 300,
    "job_conc": (1, 8, 64),
    "many_pairs": 3, "many": (100, 1000, 10_000),
    "chunk": 64 * 1024, "verify": False, "timeout": 600,
}

# The quick run checks bytes, never speed: small sizes, every byte
# verified, and an odd write size so chunks and lines straddle reads.
QUICK = {
    "pairs": 1, "spawn_pairs": 1, "capture_pairs": 1, "conc_pairs": 1,
    "timer_blocks": 1,
    "tput": 64 * MIB, "tput_asyncio": 8 * MIB,
    "lines": 200_000, "lines_asyncio": 50_000,
    "capture": 16 * MIB, "capture_asyncio": 8 * MIB,
    "forward": 64 * MIB,
    "spawns": 50, "heap_mib": 64,
    "children": 1000, "child_size": 100_000,
    "timer_samples": 20, "escalations": 10,
    "trees": 3, "contain_spawns": 30,
    "capseq_pairs": 1, "capseq": 20, "capseq_size": MIB + 12345,
    "jobs_pairs": 1, "jobs": 300, "jobs_libuv": 300, "jobs_asyncio": 100,
    "job_size": 300,
    "job_conc": (1, 8, 64),
    "many_pairs": 1, "many": (100, 1000),
    "chunk": 12345, "verify": True, "timeout": 120,
}


class Suite:
    """One benchmark: its variants (run once per round, in order), the
    RESULT key its peers print, and its comparisons.

    variants: (name, peer, mode, extra options) with peer one of raw, uv,
    asyncio, asproc. ratios: (A, B, bar text or None, invert) where invert
    turns a ratio of rates into a ratio of times (slowdowns). extras: the
    other figures a run prints, {RESULT key: (suffix, unit)}; "A-cpu" in
    a ratio names variant A's figure of the key whose suffix is "-cpu"."""

    def __init__(self, name, key, unit, rounds, variants, ratios,
                 cpu=-1, child_cpu=-1, samples=False, bench=None,
                 extras=None):
        self.extras = extras or {}
        self.name = name
        self.key = key
        self.unit = unit
        self.rounds = rounds
        self.variants = variants
        self.ratios = ratios
        self.cpu = cpu
        self.child_cpu = child_cpu
        self.samples = samples
        self.bench = bench or name


def stream_variants(mode, size, size_asyncio, transports):
    """The raw, asproc, libuv and asyncio variants of a stream mode, each
    asproc variant right after the raw one on the same transport so the
    pairs run side by side."""
    out = []
    for t in transports:
        out.append((f"raw-{t}", "raw", mode, {"transport": t, "size": size}))
        out.append((f"asproc-{t}", "asproc", mode,
                    {"transport": t, "size": size}))
    out.append(("libuv", "uv", mode, {"size": size}))
    out.append(("asyncio", "asyncio", mode, {"size": size_asyncio}))
    return out


def capseq_suite(cfg):
    """Many captures of 1 MiB one after another on one loop (a build tool
    capturing job outputs): asproc with and without its per-loop cache of
    capture mappings, the raw realloc loop and libuv."""
    n, size = cfg["capseq"], cfg["capseq_size"]
    variants = []
    for t in ("pipe", "socketpair"):
        suffix = "" if t == "pipe" else "-socketpair"
        variants += [
            (f"raw-realloc{suffix}", "raw", "capseq",
             {"count": n, "size": size, "transport": t}),
            (f"asproc{suffix}", "asproc", "capseq",
             {"count": n, "size": size, "transport": t}),
            (f"asproc{suffix}-nocache", "asproc", "capseq",
             {"count": n, "size": size, "transport": t + "-nocache"}),
        ]
    variants.append(("libuv", "uv", "capseq", {"count": n, "size": size}))
    return Suite("capseq", "capseq", "GB/s", cfg["capseq_pairs"], variants, [
        ("asproc", "asproc-nocache", None, False),
        ("asproc-socketpair", "asproc-socketpair-nocache", None, False),
        ("asproc", "libuv", None, False),
        ("asproc-socketpair", "libuv", None, False),
        ("asproc", "raw-realloc", None, False),
        ("asproc-socketpair", "raw-realloc-socketpair", None, False),
    ], cpu=0, child_cpu=1)


def jobs_suite(cfg):
    """Many short jobs (the build-tool shape): at each concurrency the
    raw posix_spawn + poll runner, asproc (asp_run_start), libuv and
    asyncio, side by side; jobs/s and the parent's CPU per job."""
    variants, ratios = [], []
    for c in cfg["job_conc"]:
        for peer, label in (("raw", "raw"), ("asproc", "asproc"),
                            ("uv", "libuv"), ("asyncio", "asyncio")):
            # The peers the bars are about run the full count; libuv and
            # asyncio fewer, to keep the suite's time (ratios are of rates).
            n = {"asyncio": cfg["jobs_asyncio"],
                 "uv": cfg["jobs_libuv"]}.get(peer, cfg["jobs"])
            variants.append((f"{label}-c{c}", peer, "jobs",
                             {"count": n, "size": cfg["job_size"],
                              "conc": c}))
        a = f"asproc-c{c}"
        ratios += [
            (a, f"raw-c{c}", ">= 1.0", False),
            (f"{a}-cpu", f"raw-c{c}-cpu", "<= 1.1", False),
            (a, f"libuv-c{c}", ">= 1.0", False),
            (f"{a}-cpu", f"libuv-c{c}-cpu", None, False),
            (a, f"asyncio-c{c}", None, False),
        ]
    return Suite("jobs", "jobs", "jobs/s", cfg["jobs_pairs"], variants,
                 ratios, extras={"jobs-cpu": ("-cpu", "us/job")})


def many_counts(counts):
    """The counts of the many suite that this machine's hard open-file
    limit allows: asproc holds 2 fds per child (its stdin pipe and a
    pidfd) and needs 64 more; a count that does not fit becomes the
    largest multiple of 100 that does, and a note says so."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return list(counts), None
    room = (hard - 64) // 2 // 100 * 100
    fitted = [n if n <= room else room for n in counts]
    note = None
    if fitted != list(counts):
        note = (f"many: hard RLIMIT_NOFILE {hard} holds {room} children "
                f"at 2 fds each, not {max(counts)}; largest count {room}")
    return fitted, note


def many_suite(cfg):
    """Many idle children held at once, then released together: the time
    per child at each count (the bar: the largest count within 1.3x of
    the smallest), asproc and the raw posix_spawn loop side by side, and
    the memory and fds per child."""
    variants = []
    counts, note = many_counts(cfg["many"])
    if note:
        NOTES.append(note)
    for n in counts:
        variants.append((f"raw-{n}", "raw", "many", {"count": n}))
        variants.append((f"asproc-{n}", "asproc", "many", {"count": n}))
    lo, hi = counts[0], counts[-1]
    ratios = [(f"asproc-{hi}", f"asproc-{lo}", "<= 1.3", False),
              (f"raw-{hi}", f"raw-{lo}", None, False)]
    ratios += [(f"asproc-{n}", f"raw-{n}", None, False) for n in counts]
    return Suite("many", "many", "us/child", cfg["many_pairs"], variants,
                 ratios, extras={"many-rss": ("-rss", "KiB/child"),
                                 "many-fds": ("-fds", "fds/child")})


def suites(cfg):
    """All suites for the sizes in cfg (FULL or QUICK), in running order."""
    out = []
    for place, cpu, child in (("split", 0, 1), ("same", 0, 0)):
        variants = stream_variants("tput", cfg["tput"], cfg["tput_asyncio"],
                                   ("pipe", "pipe1m", "socketpair"))
        variants.append(("raw-epoll", "raw", "tput",
                         {"transport": "epoll", "size": cfg["tput"]}))
        out.append(Suite(
            f"throughput-{place}", "throughput", "GB/s", cfg["pairs"],
            variants, [
                ("asproc-pipe", "raw-pipe", ">= 0.95", False),
                ("asproc-pipe1m", "raw-pipe1m", ">= 0.95", False),
                ("asproc-socketpair", "raw-socketpair", ">= 0.95", False),
                ("asproc-socketpair", "libuv", ">= 1.0", False),
                ("asproc-pipe", "asyncio", ">= 25", False),
                ("raw-epoll", "raw-pipe", None, False),
                # The limit itself over asyncio: what any bar over asyncio
                # can reach on this machine.
                ("raw-pipe", "asyncio", None, False),
            ], cpu=cpu, child_cpu=child))
    out.append(Suite(
        "lines", "lines", "Mlines/s", cfg["pairs"],
        stream_variants("lines", cfg["lines"], cfg["lines_asyncio"],
                        ("pipe", "socketpair")), [
            ("asproc-pipe", "raw-pipe", ">= 0.9", False),
            ("asproc-socketpair", "raw-socketpair", ">= 0.9", False),
            ("asproc-pipe", "asyncio", ">= 50", False),
            ("asproc-socketpair", "libuv", None, False),
            ("raw-pipe", "asyncio", None, False),
        ], cpu=0, child_cpu=1))
    fwd = cfg["forward"]
    out.append(Suite(
        "forward", "forward", "GB/s", cfg["pairs"], [
            ("raw-copy", "raw", "fwd", {"transport": "copy", "size": fwd}),
            ("asproc-forward", "asproc", "fwd", {"size": fwd}),
            ("raw-splice", "raw", "fwd", {"transport": "splice", "size": fwd}),
            ("asproc-chunks", "asproc", "fwd-chunks", {"size": fwd}),
            ("libuv", "uv", "fwd", {"size": fwd}),
        ], [
            ("asproc-forward", "raw-copy", None, False),
            ("asproc-forward", "raw-splice", None, False),
            ("asproc-forward", "asproc-chunks", None, False),
            ("asproc-forward", "libuv", None, False),
        ], cpu=0, child_cpu=1))
    cap = cfg["capture"]
    out.append(Suite(
        "capture", "capture", "GB/s", cfg["capture_pairs"], [
            ("raw-realloc", "raw", "capture", {"size": cap}),
            ("asproc", "asproc", "capture", {"size": cap}),
            ("raw-realloc-socketpair", "raw", "capture",
             {"size": cap, "transport": "socketpair"}),
            ("asproc-socketpair", "asproc", "capture",
             {"size": cap, "transport": "socketpair"}),
            ("libuv", "uv", "capture", {"size": cap}),
            ("asyncio", "asyncio", "capture",
             {"size": cfg["capture_asyncio"]}),
        ], [
            ("asproc", "libuv", ">= 1.5", False),
            ("asproc-socketpair", "libuv", ">= 1.5", False),
            ("asproc", "raw-realloc", None, False),
            ("asproc-socketpair", "raw-realloc-socketpair", None, False),
            ("asproc", "asyncio", None, False),
            ("asproc-rss", "captured", "<= 1.05", False),
            ("asproc-socketpair-rss", "captured", "<= 1.05", False),
        ], cpu=0, child_cpu=1,
        extras={"capture-rss": ("-rss", "x-captured")}))
    out.append(capseq_suite(cfg))
    n, heap = cfg["spawns"], cfg["heap_mib"]
    big = f"{heap // 1024}g" if heap >= 1024 else f"{heap}m"
    out.append(Suite(
        "spawn", "spawn", "spawns/s", cfg["spawn_pairs"], [
            ("posix_spawn", "raw", "spawn", {"count": n}),
            ("asproc", "asproc", "spawn", {"count": n}),
            (f"posix_spawn-{big}", "raw", "spawn",
             {"count": n, "heap_mib": heap}),
            (f"asproc-{big}", "asproc", "spawn",
             {"count": n, "heap_mib": heap}),
        ], [
            ("asproc", "posix_spawn", ">= 0.95", False),
            (f"asproc-{big}", f"posix_spawn-{big}", None, False),
            # Slowdowns: time per spawn with the big heap over without.
            (f"asproc-{big}", "asproc", "<= 1.25", True),
            (f"posix_spawn-{big}", "posix_spawn", None, True),
        ]))
    kids, each = cfg["children"], cfg["child_size"]
    out.append(Suite(
        "concurrency", "concurrency", "GB/s", cfg["conc_pairs"], [
            (f"asproc-{kids}", "asproc", "conc",
             {"count": kids, "size": each}),
            ("asproc-1", "asproc", "conc-seq", {"count": kids, "size": each}),
        ], [(f"asproc-{kids}", "asproc-1", ">= 0.8", False)]))
    out.append(jobs_suite(cfg))
    out.append(many_suite(cfg))
    blocks = cfg["timer_blocks"]
    out.append(Suite(
        "timer", "timer", "us", blocks, [
            ("asproc", "asproc", "timer",
             {"count": max(1, cfg["timer_samples"] // blocks)}),
            ("timerfd", "raw", "timer",
             {"count": max(1, cfg["timer_samples"] // blocks)}),
        ], [("asproc-p99", "1ms", "<= 1", False),
            ("asproc-p99", "timerfd-p99", None, False)], samples=True))
    out.append(Suite(
        "escalation", "escalation", "us", blocks, [
            ("asproc", "asproc", "escalation",
             {"count": max(1, cfg["escalations"] // blocks)}),
        ], [("asproc-p99", "1ms", "<= 1", False)], samples=True))
    trees = max(1, cfg["trees"] // blocks)
    out.append(Suite(
        "tree-stop", "tree", "us", blocks, [
            ("cgroup", "asproc", "tree", {"transport": "cgroup",
                                          "count": trees}),
            ("pgroup", "asproc", "tree", {"transport": "pgroup",
                                          "count": trees}),
        ], [("cgroup-p99", "50ms", "<= 1", False),
            ("pgroup-p99", "50ms", None, False),
            ("cgroup-p50", "pgroup-p50", None, False)], samples=True))
    cs = cfg["contain_spawns"]
    out.append(Suite(
        "spawn-contain", "spawn-contain", "spawns/s", cfg["spawn_pairs"], [
            ("none", "asproc", "spawn-contain", {"transport": "none",
                                                 "count": cs}),
            ("cgroup", "asproc", "spawn-contain", {"transport": "cgroup",
                                                   "count": cs}),
        ], [("cgroup", "none", None, False)]))
    return out
