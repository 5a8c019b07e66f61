"""What libjpeg and libpng print while OpenCV decodes one image, taken off the terminal.

OpenCV installs no message handler for either library, so a damaged file prints
``Corrupt JPEG data: bad Huffman code`` or ``libpng error: ...`` straight to file
descriptor 2, and no log level silences it. Around one ``cv2.imdecode`` call fd 2 is
pointed at a private temporary file; afterwards the decoder's lines become the reason a
frame is skipped, and anything else written meanwhile (another thread's log line) is
written back to the real stderr. Decoding never blocks, so the window is milliseconds.
"""
import contextlib
import os
import sys
import tempfile
import threading
from typing import Dict, Iterator, List

DECODER_PREFIXES = ("Corrupt JPEG data", "Premature end of JPEG", "Invalid JPEG", "Bogus ", "libpng ")
# libjpeg's warning for bytes between the data and the end marker: common from cameras, harmless
BENIGN = ("extraneous bytes before marker",)

_lock = threading.Lock()
_spool = {}  # type: Dict[str, object]


@contextlib.contextmanager
def decoder_messages() -> Iterator[List[str]]:
    """Yield a list that holds, after the block, the lines the image decoders wrote to fd 2."""
    found = []  # type: List[str]
    with _lock:
        try:
            spool = _spool.get("file") or _spool.setdefault("file", tempfile.TemporaryFile())
            spool.seek(0)
            spool.truncate()
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield found  # no fd to swap (embedded interpreter): decode as it is
            return
        try:
            os.dup2(spool.fileno(), 2)
            yield found
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            spool.seek(0)
            _sort_lines(spool.read().decode("utf-8", "replace"), found)


def _sort_lines(text: str, found: List[str]) -> None:
    others = []
    for line in text.splitlines(True):
        if line.startswith(DECODER_PREFIXES):
            found.append(line.strip())
        else:
            others.append(line)
    if others:
        os.write(2, "".join(others).encode("utf-8", "replace"))


def damage(messages: List[str]) -> str:
    """The decoder messages that say an image is damaged (not the harmless ones), joined; '' if none."""
    return "; ".join(m for m in messages if not any(b in m for b in BENIGN))
