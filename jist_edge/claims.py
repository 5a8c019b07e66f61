"""What a command may replace: one rule for every folder and file jist-edge writes.

``--force`` replaces only what jist-edge itself wrote, recognised by its marker file (a
bundle's or map's manifest, a synthetic route's route.json, a bench report's bench.json,
the demo's marker). A folder holding anything else (a thesis, photos) is refused with a
line naming what is in the way, with or without ``--force``; a folder that holds ours
plus a stranger's file is refused too, because replacing ours would delete theirs.

Symlinks are written through: ``--output link`` replaces what the link points to and
the link stays. A link to nothing is refused (it may point at an unmounted disk).
"""
import json
import os
import tempfile
from typing import Any, Callable, Dict, Iterable, Optional, Sequence

from jist_edge.errors import JistEdgeError
from jist_edge.fileio import ensure_parent_dir, resolve_link

Marker = Dict[str, Any]
# Hidden names that jist-edge may keep inside an output it owns (markers, caches of a verdict):
# they go with the output when it is replaced.
OWN_PREFIX = ".jist-edge"


class OutputKind(object):
    """A folder jist-edge writes: its name for messages, its marker file and what it holds.

    ``is_ours(marker)`` says whether a parsed marker is one we wrote; ``entries(marker)``
    lists the names in the folder that belong to it (the marker included).
    """

    def __init__(self, noun: str, marker: str, is_ours: Callable[[Marker], bool],
                 entries: Callable[[Marker], Iterable[str]]) -> None:
        self.noun = noun
        self.marker = marker
        self.is_ours = is_ours
        self.entries = entries

    def read(self, folder: str) -> Optional[Marker]:
        """The parsed marker when ``folder`` holds one of ours, else None (never raises)."""
        path = os.path.join(folder, self.marker)
        try:
            with open(path, "r", encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError):
            return None
        try:
            obj = json.loads(text)
        except ValueError:
            obj = {"text": text}
        if not isinstance(obj, dict) or not self.is_ours(obj):
            return None
        return obj


def manifest_kind(noun: str, fmt: str) -> OutputKind:
    """Bundles and maps: manifest.json with our ``format`` lists every file it owns."""

    def entries(manifest: Marker) -> Iterable[str]:
        files = manifest.get("files")
        return list(files) + ["manifest.json"] if isinstance(files, dict) else ["manifest.json"]

    return OutputKind(noun, "manifest.json", lambda m: m.get("format") == fmt, entries)


def describe_names(folder: str, names: Sequence[str], limit: int = 5) -> str:
    """``thesis.txt, photos/`` (folders get a slash), at most ``limit`` names and a count."""
    shown = [n + ("/" if os.path.isdir(os.path.join(folder, n)) else "") for n in sorted(names)[:limit]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (" and {} more".format(more) if more > 0 else "")


def claim_folder(path: str, kind: OutputKind, force: bool, option: str = "--output",
                 keep: Optional[Callable[[Marker], Optional[str]]] = None) -> str:
    """The real folder to replace whole with a new ``kind``; a one-line refusal otherwise.

    ``keep(marker)`` gives the reason to keep an existing one of ours unless ``force``
    (None: replace it without asking); by default an existing one needs ``force``.
    """
    real = resolve_link(path, option)
    if not os.path.lexists(real):
        ensure_parent_dir(real)
        return real
    if not os.path.isdir(real):
        raise JistEdgeError("{} {} exists and is not a folder".format(option, path))
    names = os.listdir(real)
    if not names:
        return real
    marker = kind.read(real)
    if marker is None:
        raise JistEdgeError(
            "{} {} is not empty and holds no {} jist-edge wrote ({}); --force replaces only a {} jist-edge "
            "wrote: move these away or choose an empty or new folder".format(
                option, path, kind.noun, describe_names(real, names), kind.noun))
    foreign = sorted(n for n in set(names) - set(kind.entries(marker)) if not n.startswith(OWN_PREFIX))
    if foreign:
        raise JistEdgeError(
            "{} {} holds a {} and also {}, which jist-edge did not write; replacing the {} would delete them, "
            "so move them out of the folder first".format(option, path, kind.noun, describe_names(real, foreign),
                                                          kind.noun))
    reason = keep(marker) if keep is not None else "already holds a {}".format(kind.noun)
    if reason and not force:
        raise JistEdgeError("{} {} {}; pass --force to replace it".format(option, path, reason))
    return real


def claim_entries(folder: str, names: Sequence[str], kind: OutputKind, option: str) -> str:
    """The real folder to write ``names`` into; the other files in it are left alone.

    A name that exists already is replaced only when the folder holds our marker."""
    real = resolve_link(folder, option)
    if os.path.lexists(real) and not os.path.isdir(real):
        raise JistEdgeError("{} {} exists and is not a folder".format(option, folder))
    taken = [n for n in names if os.path.lexists(os.path.join(real, n))]
    if taken and kind.read(real) is None:
        raise JistEdgeError("{} {} already holds {}, which jist-edge did not write; choose another folder".format(
            option, folder, describe_names(real, taken)))
    check_writable(os.path.join(real, names[0]), option)
    return real


def check_writable(path: str, option: str) -> str:
    """Refuse an output file that cannot be written, before the work; nothing is created or changed.

    An existing file is opened for appending (no byte changes); a new one is probed with
    a temporary file beside it. Returns the real path (symlinks written through)."""
    real = resolve_link(path, option)
    if os.path.isdir(real):
        raise JistEdgeError("{} {} is a folder; give a file name".format(option, path))
    try:
        if os.path.exists(real):
            open(real, "a").close()
        else:
            fd, probe = tempfile.mkstemp(prefix=".jist-edge-probe-", dir=ensure_parent_dir(real))
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise JistEdgeError("cannot write {} ({}): {}".format(path, option, exc.strerror or exc))
    return real
