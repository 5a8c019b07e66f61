"""``train``: read the drives once, score the held-out drives, train to a time budget, score again.

The checkpoint (``output``) is the model's plain state_dict in the official key layout,
written atomically every few minutes and at the end; ``output + ".state"`` holds what
``resume`` needs besides (optimizer, classifiers, step, time spent, loss history).
"""
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from jist_edge.errors import JistEdgeError
from jist_edge.export.checkpoint import check_state_dict, read_state_dict, save_official
from jist_edge.export.model import JistModel, build_model
from jist_edge.fileio import atomic_path, write_json_atomic
from jist_edge.training import trainable, validate
from jist_edge.training.data import CachedDrive, DriveSpec, TrainingSet, read_drive
from jist_edge.training.loop import Config, Trainer
from jist_edge.training.losses import ClassGroups
from jist_edge.training.mining import GeoPairs

Report = Callable[[str], None]
Progress = Optional[Callable[[float, float, Dict[str, float]], None]]
HISTORY_EVERY_S = 2.0
MIN_REFRESH_S = 15.0


def state_path(output: str) -> str:
    return output + ".state"


def start_model(checkpoint: Optional[str], random_init: bool, seed: int) -> JistModel:
    if (checkpoint is None) == (not random_init):
        raise JistEdgeError("give --checkpoint START.pth or --random-init (not both, not neither)")
    if random_init:
        return build_model(random_init=True, seed=seed)
    model = build_model()
    model.load_state_dict(check_state_dict(read_state_dict(checkpoint), model, checkpoint), strict=True)
    return model.eval()


def read_drives(specs: Sequence[DriveSpec], frozen: torch.nn.Module, img_size: Sequence[int], device: torch.device,
                say: Report) -> List[CachedDrive]:
    out = []
    for spec in specs:
        t0 = time.time()
        drive = read_drive(spec, frozen, img_size, device)
        say("  cached {} frames of {} in {:.1f} s".format(len(drive), spec.source, time.time() - t0))
        out.append(drive)
    return out


def train(drives: Sequence[DriveSpec], output: str, img_size: Sequence[int], minutes: float,
          checkpoint: Optional[str] = None, random_init: bool = False, seed: int = 0, config: Optional[Config] = None,
          val_pairs: Sequence[Sequence[DriveSpec]] = (), resume: bool = False, force: bool = False,
          checkpoint_every_min: float = 2.0, summary_path: Optional[str] = None, plot_path: Optional[str] = None,
          say: Report = print, progress: Progress = None) -> Dict[str, Any]:
    """Train and return the JSON summary (also written to ``summary_path``)."""
    config = config or Config()
    if minutes <= 0:
        raise JistEdgeError("--minutes must be positive, got {}".format(minutes))
    _check_output(output, resume, force)
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    saved = _resume_state(output, config, img_size) if resume else None
    model = start_model(output if saved else checkpoint, False if saved else random_init, seed)
    frozen = trainable.frozen_part(model, config.kind).to(device)
    say("reading {} training drives ({} on {}: the frozen trunk runs once per frame)".format(
        len(drives), "layer3 output cached" if config.kind == trainable.LAYER4 else "layer4 output cached", device))
    data = TrainingSet(read_drives(drives, frozen, img_size, device, say), config.seq_len)
    val = [read_drives(pair, frozen, img_size, device, say) for pair in val_pairs]
    pairs = GeoPairs(data)
    groups = ClassGroups(data)
    say("{} windows, {} anchors with positives; CosFace: {} groups, {} classes".format(
        len(data.windows), len(pairs.anchors), len(groups), groups.describe()["classes"]))
    trainer = Trainer(model, data, pairs, groups, config, device, seed)
    history = []  # type: List[Dict[str, float]]
    spent = 0.0
    before = None
    if saved:
        trainer.load_state(saved)
        history, spent, before = saved["history"], float(saved["elapsed_s"]), saved.get("before")
        say("resumed at step {} after {:.1f} of {:.1f} minutes".format(trainer.step_count, spent / 60, minutes))
    shape = (img_size[0], img_size[1], config.seq_len)
    if val and before is None:
        before = validate.score(model, config.kind, val, validate.eval_bundle(model, *shape, random_init), device)
        say("held-out before: R@1 {} (filtered {})".format(before["mean_r1"], before["mean_filtered_r1"]))
    started = time.time()
    spent = _loop(trainer, minutes * 60.0, spent, history, checkpoint_every_min * 60.0,
                  lambda t: _save(trainer, output, config, img_size, history, t, before), progress)
    _save(trainer, output, config, img_size, history, spent, before)
    after = None
    if val:
        after = validate.score(model, config.kind, val, validate.eval_bundle(model, *shape, False), device)
        say("held-out after:  R@1 {} (filtered {})".format(after["mean_r1"], after["mean_filtered_r1"]))
    summary = _summary(trainer, data, groups, config, output, img_size, minutes, spent, time.time() - started,
                       history, before, after, checkpoint, random_init, seed, device)
    if plot_path:
        title = "jist-edge train: {} steps, {:.1f} min, {} ({})".format(
            trainer.step_count, spent / 60, config.kind,
            "from random init" if random_init else "from " + str(checkpoint))
        if validate.write_plot(plot_path, history, before, after, title, say):
            summary["plot"] = plot_path
    if summary_path:
        write_json_atomic(summary_path, summary)
    return summary


def _loop(trainer: Trainer, budget_s: float, spent: float, history: List[Dict[str, float]], save_every_s: float,
          save: Callable[[float], None], progress: Progress) -> float:
    """Steps until the budget is spent; re-mining 10 times per budget, saving every ``save_every_s``."""
    refresh_every = max(MIN_REFRESH_S, budget_s / 10.0)
    t0 = time.time() - spent
    last_refresh = last_save = last_hist = time.time()
    trainer.refresh()
    sums = {"loss": 0.0, "triplet": 0.0, "cosface": 0.0}
    count = 0
    while time.time() - t0 < budget_s:
        losses = trainer.step()
        for key in sums:
            sums[key] += losses[key]
        count += 1
        now = time.time()
        if now - last_hist >= HISTORY_EVERY_S:
            history.append(dict({k: v / count for k, v in sums.items()}, step=trainer.step_count,
                                elapsed_s=round(now - t0, 2)))
            sums = {k: 0.0 for k in sums}
            count = 0
            last_hist = now
            if progress is not None:
                progress(now - t0, budget_s, history[-1])
        if now - last_refresh >= refresh_every:
            trainer.refresh()
            last_refresh = time.time()
        if now - last_save >= save_every_s:
            save(now - t0)
            last_save = time.time()
    return time.time() - t0


def _check_output(output: str, resume: bool, force: bool) -> None:
    if os.path.isdir(output):
        raise JistEdgeError("--output {} is a folder; give a .pth file name".format(output))
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise JistEdgeError("--output {}: folder {} does not exist".format(output, parent))
    if os.path.exists(output) and not (resume or force):
        raise JistEdgeError("--output {} exists: pass --resume to continue that training or --force to "
                            "replace it".format(output))
    if resume and not (os.path.exists(output) and os.path.exists(state_path(output))):
        raise JistEdgeError("--resume: {} and its {} are not both there".format(output, state_path(output)))


def _resume_state(output: str, config: Config, img_size: Sequence[int]) -> Dict[str, Any]:
    try:
        state = torch.load(state_path(output), map_location="cpu", weights_only=False)
    except Exception as exc:  # a damaged or foreign file: say which
        raise JistEdgeError("--resume: cannot read {}: {}".format(state_path(output), str(exc).splitlines()[0]))
    if not isinstance(state, dict) or state.get("config") != config.as_dict() or \
            list(state.get("img_size", [])) != [int(v) for v in img_size]:
        raise JistEdgeError("--resume: {} was saved with another recipe or image size; give the same "
                            "options or start again with --force".format(state_path(output)))
    return state


def _save(trainer: Trainer, output: str, config: Config, img_size: Sequence[int], history: List[Dict[str, float]],
          elapsed: float, before: Any) -> None:
    """The state first, then the checkpoint: a checkpoint on disk always has a state at least as new."""
    state = dict(trainer.state(), config=config.as_dict(), img_size=[int(v) for v in img_size],
                 history=history, elapsed_s=float(elapsed), before=before)
    with atomic_path(state_path(output)) as tmp:
        torch.save(state, tmp)
    save_official(trainer.model, output)


def _summary(trainer: Trainer, data: TrainingSet, groups: ClassGroups, config: Config, output: str,
             img_size: Sequence[int], minutes: float, spent: float, wall: float, history: List[Dict[str, float]],
             before: Any, after: Any, checkpoint: Optional[str], random_init: bool, seed: int,
             device: torch.device) -> Dict[str, Any]:
    frames = trainer.frames_per_step
    return {
        "checkpoint": os.path.abspath(output),
        "start": "random init (seed {})".format(seed) if random_init else checkpoint,
        "recipe": config.as_dict(), "img_size": [int(v) for v in img_size], "device": str(device),
        "torch_threads": torch.get_num_threads(), "minutes": minutes, "trained_s": round(spent, 2),
        "wall_this_run_s": round(wall, 2), "steps": trainer.step_count,
        "frames_per_step": round(sum(frames) / len(frames), 1) if frames else None,
        "drives": data.describe(), "windows": int(len(data.windows)), "cosface": groups.describe(),
        "gem_p": trainer.model.gem_p, "seqgem_p": trainer.model.seqgem_p,
        "first_loss": history[0] if history else None, "last_loss": history[-1] if history else None,
        "held_out": {"before": before, "after": after},
    }
