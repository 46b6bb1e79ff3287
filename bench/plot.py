#!/usr/bin/env python3
"""Draws a saved benchmark log as one small chart per workload.

    plot.py RESULTS.txt OUT.png

Each workload (the <benchmark> of the log's RESULT lines) gets a panel of
horizontal bars, one per variant, in the workload's own unit (GB/s,
Mlines/s, spawns/s, us ...), coloured by who runs it: asproc, the raw C
limit, libuv, Python asyncio. An asproc bar also carries its ratio to the
raw C variant it is paired with (the log's RATIO lines: the median of the
per-round ratios). The date and the machine of the log head the figure.

Everything comes from the log, so a new workload or variant shows up
without a change here: TITLES only gives a workload a readable title (a
workload not in it is titled by its name), FAMILIES tells the colour of a
variant from the start of its name, and units that measure time (or
memory per byte) are marked "lower is better". The chart is drawn by
gnuplot (pngcairo where it has it, else png), which `make bench-deps`
installs.
"""
import math
import os
import shutil
import subprocess
import sys
import tempfile

# Readable titles of the known workloads; any other is titled by its name.
TITLES = {
    "throughput-split": "Read 2 GiB and drop it, parent and child on two CPUs",
    "throughput-same": "Read 2 GiB and drop it, parent and child on one CPU",
    "lines": "Deliver 20 M lines of 64 B, one by one",
    "forward": "Forward 2 GiB from one child into another process",
    "capture": "Capture 512 MiB into memory",
    "capture-rss": "Capture: peak memory over the bytes captured",
    "spawn": "Spawn and wait /bin/true (-2g: from a 2 GiB parent)",
    "concurrency": "1000 children x 1 MiB: all at once vs one at a time",
    "timer": "Lateness of a 10 ms timer",
    "escalation": "Escalation: lateness past a 10 ms grace",
    "capseq": "1,000 captures of 1 MiB in a row (-nocache: no mapping reuse)",
    "jobs": "Short jobs, both outputs captured (c8: 8 at a time)",
    "jobs-cpu": "Short jobs: CPU time per job",
    "many": "Hold 100 / 1,000 / 9,900 idle children: time per child",
    "many-rss": "Hold idle children: memory per child",
    "many-fds": "Hold idle children: fds per child",
    "tree-stop": "Stop a tree of 100 processes: signal to tree empty",
    "spawn-contain": "Spawn and wait, each child in a cgroup or not",
}

# (name prefix, family, colour): the first prefix a variant starts with
# decides; anything else is "other".
FAMILIES = [
    ("asproc", "asproc", "#1f6fb4"),
    ("raw", "raw C limit", "#4d4d4d"),
    ("posix_spawn", "raw C limit", "#4d4d4d"),
    ("timerfd", "raw C limit", "#4d4d4d"),
    ("libuv", "libuv", "#e08a1e"),
    ("asyncio", "Python asyncio", "#b8323a"),
    # containment variants, all asproc's
    ("cgroup", "asproc", "#1f6fb4"),
    ("pgroup", "asproc", "#1f6fb4"),
    ("none", "asproc", "#1f6fb4"),
]
OTHER = ("other", "#9aaabb")
LEGEND = ["asproc", "raw C limit", "libuv", "Python asyncio"]

# Units in which less is better: times, and memory per captured byte or
# per child.
LOWER_BETTER = {"ns", "us", "ms", "s", "x-captured", "us/job", "us/child",
                "KiB/child", "fds/child"}

COLS = 3                  # panels per row
PANEL_W = 620             # pixels
BAR_H, PANEL_PAD = 24, 74  # pixels per bar, per panel (title, axis)
HEAD_H, FOOT_H = 96, 34


def family(variant):
    """(family, colour) of a variant, from the start of its name."""
    for prefix, fam, colour in FAMILIES:
        if variant.startswith(prefix):
            return fam, colour
    return OTHER


def read_log(path):
    """Returns (date, machine, {bench: [(variant, value, unit)]} in log
    order, {(bench, A): [(B, median)]} from the RATIO lines)."""
    date, machine, benches, ratios = "?", "?", {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            w = line.split()
            if line.startswith("# date "):
                date = line[len("# date "):].strip()
            elif line.startswith("# machine "):
                machine = line[len("# machine "):].strip()
            elif w[:1] == ["RESULT"] and len(w) == 5:
                benches.setdefault(w[1], []).append((w[2], float(w[3]), w[4]))
            elif w[:1] == ["RATIO"] and len(w) == 6 and "/" in w[2]:
                a, b = w[2].split("/", 1)
                ratios.setdefault((w[1], a), []).append((b, float(w[3])))
    return date, machine, benches, ratios


def figure(v):
    """v with three significant digits and no exponent."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    return f"{v:.{max(0, 2 - math.floor(math.log10(abs(v))))}f}"


def bar_text(bench, variant, value, ratios, variants):
    """The label at a bar's end: the value, and for asproc its ratio to
    the first raw C variant of the same workload it was paired with."""
    text = figure(value)
    if family(variant)[0] != "asproc":
        return text
    for other, median in ratios.get((bench, variant), []):
        if other in variants and family(other)[0] == "raw C limit":
            return f"{text}  ({figure(median)}x {other})"
    return text


def quote(s):
    """A gnuplot string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def layout(benches):
    """Rows of workloads and each row's height in pixels."""
    names = list(benches)
    rows = [names[i:i + COLS] for i in range(0, len(names), COLS)]
    heights = [PANEL_PAD + BAR_H * max([3] + [len(benches[b]) for b in row])
               for row in rows]
    return rows, heights


def panel(data, index, bench, bars, ratios, box):
    """Returns the gnuplot commands of one panel, having written its bars
    into data (as gnuplot data block number index). box: origin and size
    in screen fractions."""
    unit = bars[0][2]
    lower = unit in LOWER_BETTER
    variants = {v for v, _, _ in bars}
    top = max([v for _, v, _ in bars] + [0]) or 1
    for y, (variant, value, _) in enumerate(bars):
        colour = int(family(variant)[1][1:], 16)
        text = bar_text(bench, variant, value, ratios, variants)
        data.write(f"{y}\t{value}\t{colour}\t{quote(text)}\n")
    data.write("\n\n")
    title = TITLES.get(bench, bench)
    better = "lower is better" if lower else "higher is better"
    ytics = ", ".join(f"{quote(v)} {y}" for y, (v, _, _) in enumerate(bars))
    return f"""
set origin {box[0]:.4f},{box[1]:.4f}
set size {box[2]:.4f},{box[3]:.4f}
set title {quote(title)} noenhanced font ',11'
set xlabel {quote(f"{unit}  ({bench}; {better})")} noenhanced font ',9'
set yrange [{len(bars) - 0.5}:-0.5]
set xrange [0:{top * 1.62}]
set ytics ({ytics}) noenhanced font ',9'
plot DATA index {index} using (0):1:(0):2:($1-0.36):($1+0.36):3 \\
       with boxxyerror fs solid 0.9 noborder lc rgb variable notitle, \\
     '' index {index} using 2:1:4 with labels left offset 0.6,0 \\
       font ',9' noenhanced notitle
"""


def script(date, machine, benches, ratios, data, out, cairo):
    """The whole gnuplot program; the bars go into the file data."""
    rows, heights = layout(benches)
    width = PANEL_W * min(COLS, max(1, len(benches)))
    height = HEAD_H + sum(heights) + FOOT_H
    term = (f"pngcairo size {width},{height} font 'sans,10'" if cairo
            else f"png size {width},{height}")
    f = [f"set terminal {term}\nset output {quote(out)}\n"]
    f.append(f"set multiplot title {quote(f'asproc benchmarks  -  {date}  -  {machine}')}"
             " noenhanced font ',15'\n")
    # The legend, centred: one coloured name per family (about 9 pixels
    # a character at this size).
    shown = LEGEND + ([OTHER[0]] if any(
        family(v)[0] == OTHER[0] for bars in benches.values()
        for v, _, _ in bars) else [])
    step = [(len(fam) + 6) * 9 for fam in shown]
    x = (width - sum(step)) / 2
    for fam, w in zip(shown, step):
        colour = next((c for _, n, c in FAMILIES if n == fam), OTHER[1])
        f.append(f"set label {quote('■ ' + fam)} at screen {x / width:.4f},"
                 f"{1 - 58 / height:.4f} tc rgb '{colour}' font ',12'\n")
        x += w
    f.append(f"set label {quote('Each bar: the median over the rounds of one make bench run (bench/results.txt). In brackets: asproc over its raw C peer, the median of paired per-round ratios. Linear axes.')}"
             f" at screen 0.01,{14 / height:.4f} font ',9' noenhanced\n")
    f.append("set style fill solid\nset grid xtics lc rgb '#dddddd'\n"
             "set border 3\nset xtics nomirror font ',9'\nset ytics nomirror\n"
             "set lmargin 20\nset rmargin 2\n")
    with open(data, "w", encoding="utf-8") as d:
        index, y0 = 0, HEAD_H
        for row, h in zip(rows, heights):
            for col, bench in enumerate(row):
                box = (col * PANEL_W / width, 1 - (y0 + h) / height,
                       PANEL_W / width, h / height)
                if index == 0:
                    f.append(f"DATA = {quote(data)}\n")
                f.append(panel(d, index, bench, benches[bench], ratios, box))
                if index == 0:
                    f.append("unset label\n")
                index += 1
            y0 += h
    f.append("unset multiplot\n")
    return "".join(f)


def main():
    """Reads the log, writes the bars to a temporary file, runs gnuplot."""
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py RESULTS.txt OUT.png")
    src, out = sys.argv[1], sys.argv[2]
    if not os.path.exists(src):
        sys.exit(f"plot.py: {src} missing: run `make bench` first")
    if not shutil.which("gnuplot"):
        sys.exit("plot.py: gnuplot missing (`make bench-deps`)")
    date, machine, benches, ratios = read_log(src)
    if not benches:
        sys.exit(f"plot.py: no RESULT lines in {src}")
    terms = subprocess.run(["gnuplot", "-e", "set terminal"],
                           capture_output=True, text=True, check=False)
    cairo = "pngcairo" in terms.stdout + terms.stderr
    fd, data = tempfile.mkstemp(suffix=".tsv")
    os.close(fd)
    try:
        program = script(date, machine, benches, ratios, data, out, cairo)
        subprocess.run(["gnuplot"], input=program, text=True, check=True)
    finally:
        os.unlink(data)
    n = sum(len(b) for b in benches.values())
    print(f"plot.py: wrote {out} ({len(benches)} workloads, {n} bars)")


if __name__ == "__main__":
    main()
