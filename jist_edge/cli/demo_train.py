"""`jist-edge demo --train`: brief JIST training on synthetic drives of other seeds, before the demo maps.

The demo's own route (seed S) is never trained on: the weights learn from routes of seeds
S+1 and S+2 (each a database and a query pass of other streets), head only (GeM p, FC,
SeqGeM p on cached layer4 output), the recipe that pays within a CPU budget of minutes.
Needs torch, as the demo's export does.
"""
import os
from typing import Any, Dict, Sequence

import click

TRAIN_SEEDS = (1, 2)  # offsets from the demo's seed
TRAIN_FRAMES = 150


def train_weights(out: str, img_size: Sequence[int], seq_len: int, seed: int, minutes: float) -> Dict[str, Any]:
    """Synthesize the training drives, train, return {checkpoint, seeds, summary}."""
    from jist_edge.synth import make_route_dataset
    from jist_edge.training.data import expand_routes
    from jist_edge.training.loop import Config
    from jist_edge.training.run import train
    from jist_edge.training.threads import torch_threads

    seeds = [seed + k for k in TRAIN_SEEDS]
    routes = [make_route_dataset(os.path.join(out, "train-routes", "seed{}".format(s)), frames=TRAIN_FRAMES,
                                 size=tuple(img_size), seed=s)["root"] for s in seeds]
    checkpoint = os.path.join(out, "trained.pth")
    with torch_threads(1):
        summary = train(expand_routes(routes, []), checkpoint, img_size, minutes, random_init=True, seed=seed,
                        config=Config("head", lr=1e-3, lr_p=1e-4, seq_len=seq_len), force=True,
                        summary_path=os.path.join(out, "trained.train.json"), say=lambda text: None)
    click.echo("      {} steps in {:.1f} min on synthetic seeds {} (not the demo's seed {}), head only".format(
        summary["steps"], summary["trained_s"] / 60.0, ", ".join(str(s) for s in seeds), seed))
    return {"checkpoint": checkpoint, "seeds": seeds, "steps": summary["steps"], "minutes": minutes}
