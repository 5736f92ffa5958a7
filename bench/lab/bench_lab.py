"""Time `lab up` (from scratch, from the cached tarball, warm, already up) and `lab down`.

Runs on the throwaway lab (index 1) with a private image cache, so the shared
lab and its image are never disturbed. Root only. Prints one JSON object.

    .venv/bin/python bench/lab/bench_lab.py [--scratch] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from relayops.lab import lifecycle
from relayops.lab.image import PACKAGES, SUITE, image_key

INDEX = 1
CACHE = Path("/var/cache/relayops-lab-bench")
SHARED_CACHE = Path("/var/cache/relayops-lab")


def timed_up(relays: int) -> dict[str, object]:
    started = time.monotonic()
    result = lifecycle.up(relays=relays, index=INDEX, cache_dir=CACHE)
    return {"wall": round(time.monotonic() - started, 2), "phases": result.timings}


def timed_down() -> float:
    started = time.monotonic()
    lifecycle.down(index=INDEX)
    return round(time.monotonic() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scratch", action="store_true", help="also build the image from scratch")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    key = image_key(suite=SUITE, packages=PACKAGES)
    tarball = f"image-{key}.tar.zst"
    lifecycle.down(index=INDEX)
    out: dict[str, object] = {}
    if args.scratch:
        shutil.rmtree(CACHE, ignore_errors=True)
        out["scratch"] = timed_up(2)
        out["down_after_scratch"] = timed_down()
    elif not (CACHE / tarball).exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED_CACHE / tarball, CACHE / tarball)
    cached, warm, again, downs = [], [], [], []
    for _ in range(args.repeat):
        shutil.rmtree(CACHE / f"rootfs-{key}", ignore_errors=True)  # keep only the tarball
        cached.append(timed_up(2))
        downs.append(timed_down())
        warm.append(timed_up(2))
        again.append(timed_up(2))
        downs.append(timed_down())
    wide = timed_up(8)
    downs.append(timed_down())
    walls = {name: [r["wall"] for r in runs] for name, runs in
             {"cached_tarball": cached, "warm": warm, "already_up": again}.items()}  # fmt: skip
    out.update({
        "cached_tarball": cached,
        "warm": warm,
        "already_up": again,
        "eight_relays_warm": wide,
        "down": downs,
        "median": {name: statistics.median(v) for name, v in {**walls, "down": downs}.items()},
    })  # fmt: skip
    shutil.rmtree(CACHE, ignore_errors=True)  # 0.5 GB; the next run copies the shared tarball
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
