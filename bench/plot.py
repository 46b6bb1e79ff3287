#!/usr/bin/env python3
"""Draws the RATIO lines of a saved benchmark log as a bar chart.

    plot.py RESULTS.txt OUT.png

One bar per comparison: the median of the per-round ratios, a whisker
from min to max, and the bar it must meet (from the log's "# bar" lines)
as a red mark; a box is green when its median meets the bar, red when it
misses it, grey when the comparison has no bar. The y axis is logarithmic because the ratios run from
fractions (latency over 1 ms) to tens (asproc over asyncio). The title
carries the date and the machine the log was recorded on.
"""
import os
import shutil
import subprocess
import sys
import tempfile


def read_log(path):
    """Returns (date, machine, [(label, median, min, max, bar or None)])."""
    date, machine, bars, rows = "?", "?", {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            f_ = line.split()
            if line.startswith("# date "):
                date = line[len("# date "):].strip()
            elif line.startswith("# machine "):
                machine = line[len("# machine "):].strip()
            elif line.startswith("# bar ") and len(f_) >= 6:
                bars[(f_[2], f_[3])] = (f_[4], float(f_[5]))
            elif f_[:1] == ["RATIO"] and len(f_) == 6:
                bar = bars.get((f_[1], f_[2]))
                label = f"{f_[1]} {f_[2]}"
                if bar:
                    label += f" ({bar[0]} {bar[1]:g})"
                rows.append((label, float(f_[3]), float(f_[4]),
                             float(f_[5]), bar))
    return date, machine, rows


def verdict(median, bar):
    """1 when median meets bar (op, value), 2 when it does not, 0 when
    the comparison has no bar: the colour index of its box."""
    if not bar:
        return 0
    op, value = bar
    ok = median >= value if op == ">=" else median <= value
    return 1 if ok else 2


def gnuplot_script(data, out, title, n, cairo):
    """The gnuplot program for n rows of data written by main()."""
    term = ("pngcairo size 1400,800 font 'sans,10'" if cairo
            else "png size 1400,800")
    return f"""
set terminal {term}
set output '{out}'
set title "{title}" noenhanced
set datafile separator '\\t'
set logscale y
set ylabel 'ratio (median of per-round ratios; whisker: min..max)'
set xtics rotate by -40 left noenhanced
set xrange [-0.7:{n - 0.3}]
set style fill solid 0.5 border -1
set boxwidth 0.6
set grid ytics
set key outside top center horizontal
set palette defined (0 '#9aaabb', 1 '#44aa66', 2 '#dd6644')
set cbrange [0:2]
unset colorbox
plot '{data}' using 1:3:7:xtic(2) with boxes lc palette \\
        title 'median (green: meets its bar, red: misses it)', \\
     '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0 title 'min..max', \\
     '' using 1:($6 > 0 ? $6 : 1/0) with points pt 5 ps 1.5 \\
        lc rgb '#cc3311' title 'bar', \\
     1 with lines dt 2 lc rgb 'gray' notitle
"""


def main():
    """Reads the log, writes a data file, runs gnuplot."""
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py RESULTS.txt OUT.png")
    src, out = sys.argv[1], sys.argv[2]
    if not os.path.exists(src):
        sys.exit(f"plot.py: {src} missing: run `make bench` first")
    if not shutil.which("gnuplot"):
        sys.exit("plot.py: gnuplot missing (`make bench-deps`)")
    date, machine, rows = read_log(src)
    if not rows:
        sys.exit(f"plot.py: no RATIO lines in {src}")
    terms = subprocess.run(["gnuplot", "-e", "set terminal"],
                           capture_output=True, text=True)
    cairo = "pngcairo" in terms.stdout + terms.stderr
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
        for i, (label, med, lo, hi, bar) in enumerate(rows):
            f.write(f"{i}\t{label}\t{med}\t{lo}\t{hi}\t"
                    f"{bar[1] if bar else 0}\t{verdict(med, bar)}\n")
        data = f.name
    title = f"asproc benchmarks, {date}, {machine}"
    try:
        subprocess.run(["gnuplot"], input=gnuplot_script(
            data, out, title.replace('"', "'"), len(rows), cairo),
            text=True, check=True)
    finally:
        os.unlink(data)
    print(f"plot.py: wrote {out} ({len(rows)} ratios)")


if __name__ == "__main__":
    main()
