"""Training throughput and time to a held-out recall, for `jist-edge train`'s two trainable sets.

    python -m jist_edge.benchmarks.training --img-size 120 160 --minutes 3 --threads 1

Synthesizes training routes (seeds 1, 2) and held-out routes (seeds 3, 4, 5), caches the
frozen trunk's output once, then (1) times steps of each trainable set with the same
sampling, alternating, and reports frames per second per step (the unique frames a step
runs through the trained part) and seconds per step; (2) trains the head for --minutes,
scoring the held-out routes every --eval-every seconds, and reports the mean R@1 curve and
the first time it was --gain points above the random weights' (the weights are random-init:
seed --seed). CPU flags and load average go with the numbers (speed depends on both).
"""
import argparse
import json
import os
import tempfile
import time
from typing import Any, Dict, List

import torch

from jist_edge.export.model import build_model
from jist_edge.training import trainable, validate
from jist_edge.training.data import TrainingSet, expand_routes, read_drive
from jist_edge.training.loop import Config, Trainer
from jist_edge.training.losses import ClassGroups
from jist_edge.training.mining import GeoPairs


def _routes(root: str, seeds: List[int], size: Any, frames: int) -> List[str]:
    from jist_edge.synth import make_route_dataset

    return [make_route_dataset(os.path.join(root, "s{}".format(s)), frames=frames, size=size, seed=s)["root"]
            for s in seeds]


def _trainer(kind: str, routes: List[str], size: Any, seed: int) -> Trainer:
    model = build_model(random_init=True, seed=seed)
    frozen = trainable.frozen_part(model, kind)
    data = TrainingSet([read_drive(d, frozen, size, torch.device("cpu")) for d in expand_routes(routes, [])], 5)
    lr = 1e-3 if kind == trainable.HEAD else 1e-4
    return Trainer(model, data, GeoPairs(data), ClassGroups(data), Config(kind, lr=lr, lr_p=lr / 10),
                   torch.device("cpu"), seed)


def throughput(trainers: Dict[str, Trainer], steps: int, rounds: int) -> Dict[str, Any]:
    out = {k: [] for k in trainers}  # type: Dict[str, List[Dict[str, float]]]
    for t in trainers.values():
        t.refresh()
        t.step()  # warm-up
    for _ in range(rounds):
        for kind, t in trainers.items():
            t.frames_per_step.clear()
            start = time.perf_counter()
            for _ in range(steps):
                t.step()
            sec = (time.perf_counter() - start) / steps
            frames = sum(t.frames_per_step) / len(t.frames_per_step)
            out[kind].append({"s_per_step": round(sec, 4), "frames_per_step": round(frames, 1),
                              "frames_per_s": round(frames / sec, 1)})
    return out


def time_to_recall(t: Trainer, val: List[Any], size: Any, minutes: float, eval_every: float,
                   gain: float) -> Dict[str, Any]:
    def score() -> float:
        return validate.score(t.model, t.config.kind, val, validate.eval_bundle(t.model, size[0], size[1], 5, True),
                              torch.device("cpu"))["mean_r1"]

    curve = [{"train_s": 0.0, "steps": 0, "mean_r1": score()}]
    target = curve[0]["mean_r1"] + gain
    trained = 0.0
    last_refresh = 0.0
    t.refresh()
    while trained < minutes * 60.0:
        start = time.perf_counter()
        while time.perf_counter() - start < eval_every:
            t.step()
        trained += time.perf_counter() - start
        if trained - last_refresh >= minutes * 6.0:
            t.refresh()
            last_refresh = trained
        curve.append({"train_s": round(trained, 1), "steps": t.step_count, "mean_r1": score()})
    hit = next((c for c in curve if c["mean_r1"] >= target), None)
    return {"random_r1": curve[0]["mean_r1"], "target_r1": target, "curve": curve,
            "time_to_target_s": hit["train_s"] if hit else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--img-size", type=int, nargs=2, default=(120, 160))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--eval-every", type=float, default=30.0)
    parser.add_argument("--gain", type=float, default=10.0, help="R@1 points above random weights")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = tuple(args.img_size)
    with tempfile.TemporaryDirectory(prefix="jist-edge-train-bench-") as root:
        train_routes = _routes(root, [1, 2], size, args.frames)
        val_routes = _routes(root, [3, 4, 5], size, args.frames)
        trainers = {k: _trainer(k, train_routes, size, args.seed) for k in trainable.KINDS}
        result = {"img_size": list(size), "threads": args.threads, "weights": "random init, seed {}".format(args.seed),
                  "cpu_flags": _flags(), "load_before": os.getloadavg(),
                  "throughput": throughput(trainers, args.steps, args.rounds)}
        head = trainers[trainable.HEAD]
        frozen = trainable.frozen_part(head.model, trainable.HEAD)
        val = [[read_drive(d, frozen, size, torch.device("cpu")) for d in expand_routes([r], [])] for r in val_routes]
        result["head_time_to_recall"] = time_to_recall(head, val, size, args.minutes, args.eval_every, args.gain)
        result["load_after"] = os.getloadavg()
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")


def _flags() -> List[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next(line for line in handle if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in set(flags) if f in ("avx2", "avx512f", "avx512_vnni", "amx_tile"))


if __name__ == "__main__":
    main()
