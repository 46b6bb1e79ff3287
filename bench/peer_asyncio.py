#!/usr/bin/env python3
"""The Python asyncio peer: one measurement per run.

    peer_asyncio.py tput|lines|capture|jobs --writer PATH [--variant NAME]
        [--cpu K] [--child-cpu K] [--size N[K|M|G]] [--chunk N]
        [--count N] [--conc N] [--verify]

The writer (bench/writer.c) is started with asyncio.create_subprocess_exec
and read the way an asyncio program would: read(65536) until EOF, readline()
until EOF, or communicate(); in the jobs mode, --count jobs of --size bytes
to stdout and stderr each, every one create_subprocess_exec + communicate()
under a semaphore of --conc. Prints RESULT lines in the format of the C
peers; a byte-check failure prints FAIL on stderr and exits with 2.
"""
import argparse
import asyncio
import os
import resource
import sys
import time

BYTES_PERIOD = 65521
LINE_LEN = 64
LINES_PERIOD = LINE_LEN * 1021
EXIT_MISMATCH = 2


def pat_byte(kind, off):
    """The byte of the pattern at stream offset off (as pattern.c)."""
    if kind == "lines":
        col = off % LINE_LEN
        line = (off // LINE_LEN) % (LINES_PERIOD // LINE_LEN)
        if col == LINE_LEN - 1:
            return 10
        return 33 + (line * 31 + col * 7) % 94
    i = off % BYTES_PERIOD
    return (i * 131 + (i >> 8) * 7 + 1) & 0xFF


class Pattern:
    """A precomputed pattern with runs of at least span bytes from any
    offset, so checking a chunk is one slice comparison."""

    def __init__(self, kind, span):
        self.period = LINES_PERIOD if kind == "lines" else BYTES_PERIOD
        self.span = span
        one = bytes(pat_byte(kind, i) for i in range(self.period))
        # The pattern is periodic, so the tail is the head repeated.
        reps = (self.period + span) // self.period + 1
        self.buf = (one * reps)[:self.period + span]

    def check(self, off, data):
        """True if data equals the pattern from stream offset off."""
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            n = min(self.span, len(view) - pos)
            start = (off + pos) % self.period
            if view[pos:pos + n] != self.buf[start:start + n]:
                return False
            pos += n
        return True


def mismatch(what, at):
    """Reports a byte-check failure and exits with EXIT_MISMATCH."""
    print(f"FAIL asyncio: {what} at {at}", file=sys.stderr)
    sys.exit(EXIT_MISMATCH)


def parse_size(text):
    """'64K', '2M', '1G' or a plain number of bytes, as the C peers."""
    units = {"K": 10, "M": 20, "G": 30}
    suffix = text[-1:].upper()
    if suffix in units:
        return int(text[:-1]) << units[suffix]
    return int(text)


def writer_argv(args, lines):
    """The writer's command line for this run."""
    argv = [args.writer]
    if args.child_cpu >= 0:
        argv += ["--cpu", str(args.child_cpu)]
    if lines:
        argv.append("--lines")
    return argv + ["--chunk", str(args.chunk), str(args.size)]


async def spawn(args, lines):
    """Starts the writer with stdout piped, as an asyncio program would."""
    return await asyncio.create_subprocess_exec(
        *writer_argv(args, lines),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE)


async def run_tput(args):
    """read(65536) until EOF; returns (bytes read, seconds)."""
    pat = Pattern("bytes", 65536) if args.verify else None
    t0 = time.perf_counter()
    proc = await spawn(args, False)
    total = 0
    while True:
        chunk = await proc.stdout.read(65536)
        if not chunk:
            break
        if pat and not pat.check(total, chunk):
            mismatch("output differs from the pattern", total)
        total += len(chunk)
    code = await proc.wait()
    secs = time.perf_counter() - t0
    if code != 0:
        sys.exit(f"asyncio: writer exited {code}")
    return total, secs


async def run_lines(args):
    """readline() until EOF; returns (lines read, seconds)."""
    pat = Pattern("lines", LINE_LEN) if args.verify else None
    t0 = time.perf_counter()
    proc = await spawn(args, True)
    count = 0
    while True:
        line = await proc.stdout.readline()
        if not line:
            break
        if pat and (len(line) != LINE_LEN or
                    not pat.check(count * LINE_LEN, line)):
            mismatch("line differs from the pattern", count)
        count += 1
    code = await proc.wait()
    secs = time.perf_counter() - t0
    if code != 0:
        sys.exit(f"asyncio: writer exited {code}")
    return count, secs


async def run_capture(args):
    """communicate(); returns (captured bytes, seconds)."""
    t0 = time.perf_counter()
    proc = await spawn(args, False)
    out, _ = await proc.communicate()
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"asyncio: writer exited {proc.returncode}")
    return out, secs


async def run_jobs(args):
    """args.count jobs, args.conc at a time (a semaphore), each spawned
    with stdout and stderr piped and read with communicate(); returns
    (seconds, CPU seconds of this process)."""
    want = Pattern("bytes", args.size).buf[:args.size]
    argv = [args.writer, "--to", "both", "--chunk", str(args.size),
            str(args.size)]
    sem = asyncio.Semaphore(args.conc)

    async def job(k):
        async with sem:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
        if proc.returncode != 0:
            mismatch("a job did not exit 0", k)
        if out != want or err != want:
            mismatch("a job's output differs", k)

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(job(k) for k in range(args.count)))
    return time.perf_counter() - t0, time.process_time() - cpu0


def main():
    """Parses options, pins, runs one measurement and prints RESULT."""
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["tput", "lines", "capture", "jobs"])
    ap.add_argument("--writer", required=True)
    ap.add_argument("--variant", default="asyncio")
    ap.add_argument("--cpu", type=int, default=-1)
    ap.add_argument("--child-cpu", type=int, default=-1)
    ap.add_argument("--size", type=parse_size, default=64 << 20)
    ap.add_argument("--chunk", type=parse_size, default=64 << 10)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--conc", type=int, default=1)
    ap.add_argument("--verify", action="store_true")
    args = ap.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    if args.mode == "tput":
        total, secs = asyncio.run(run_tput(args))
        if total != args.size:
            mismatch("byte count differs", total)
        print(f"RESULT throughput {args.variant} {total / secs / 1e9:.6g} "
              "GB/s")
    elif args.mode == "jobs":
        secs, cpu = asyncio.run(run_jobs(args))
        print(f"RESULT jobs {args.variant} {args.count / secs:.6g} jobs/s")
        print(f"RESULT jobs-cpu {args.variant} {cpu * 1e6 / args.count:.6g} "
              "us/job")
    elif args.mode == "lines":
        count, secs = asyncio.run(run_lines(args))
        if count != args.size:
            mismatch("line count differs", count)
        print(f"RESULT lines {args.variant} {count / secs / 1e6:.6g} "
              "Mlines/s")
    else:
        out, secs = asyncio.run(run_capture(args))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        # Checked after the clock stopped: always on, never measured.
        if len(out) != args.size or \
                not Pattern("bytes", 1 << 20).check(0, out):
            mismatch("captured bytes differ", len(out))
        print(f"RESULT capture {args.variant} {len(out) / secs / 1e9:.6g} "
              "GB/s")
        print(f"RESULT capture-rss {args.variant} {rss / len(out):.6g} "
              "x-captured")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
