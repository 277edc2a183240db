"""Benchmark: how fast the synthetic depth-people engine prepares frames.

Renders `--frames` frames (default 10,000) at 160x120 with 1-3 people in one process and in a pool of `--workers`
processes, and optionally prepares them as the TFDS dataset (rendering + encoding + writing). Prints a table.

    .venv/bin/python benchmarks/synthetic_engine.py [--frames 10000] [--workers 2] [--tfds]
"""

import argparse
import multiprocessing
import os
import tempfile
import time

from pose_tl.data.people.engine import render_people_frame
from pose_tl.data.people.tfds_builder import default_settings

SETTINGS = default_settings(image_size=(120, 160), people=(1, 3))


def _render(index):
    frame = render_people_frame(0, index, SETTINGS)
    return frame.num_people


def render_in_process(count):
    start = time.perf_counter()
    people = sum(_render(i) for i in range(count))
    return time.perf_counter() - start, people


def render_in_pool(count, workers):
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        people = sum(pool.imap_unordered(_render, range(count), chunksize=64))
    return time.perf_counter() - start, people


def prepare_tfds(count):
    from pose_tl.data.people.tfds_builder import prepare_synthetic

    with tempfile.TemporaryDirectory() as data_dir:
        start = time.perf_counter()
        builder = prepare_synthetic(SETTINGS, 0, {"train": count}, data_dir)
        elapsed = time.perf_counter() - start
        assert builder.info.splits["train"].num_examples == count
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--single-frames", type=int, default=1000, help="frames for the one-process baseline")
    parser.add_argument("--tfds", action="store_true", help="also time the full TFDS prepare of --frames frames")
    args = parser.parse_args()

    rows = []
    seconds, people = render_in_process(args.single_frames)
    single_fps = args.single_frames / seconds
    rows.append(("render, 1 process", args.single_frames, seconds, single_fps, people / args.single_frames))
    seconds, people = render_in_pool(args.frames, args.workers)
    rows.append((f"render, {args.workers} processes", args.frames, seconds, args.frames / seconds,
                 people / args.frames))
    if args.tfds:
        seconds = prepare_tfds(args.frames)
        rows.append(("TFDS prepare (render+encode+write)", args.frames, seconds, args.frames / seconds, float("nan")))

    print(f"\nsynthetic engine, 160x120, 1-3 people, {os.cpu_count()} CPUs")
    print(f"{'what':<38}{'frames':>8}{'seconds':>10}{'frames/s':>10}{'x 1-proc':>10}{'people/frame':>14}")
    for what, frames, secs, fps, ppf in rows:
        print(f"{what:<38}{frames:>8}{secs:>10.1f}{fps:>10.1f}{fps / single_fps:>10.2f}{ppf:>14.2f}")
    print(f"\n10,000 frames at the fastest rate: {10_000 / max(r[3] for r in rows):.0f} s (target <= 120 s)")


if __name__ == "__main__":
    main()
