"""One exception type for every problem a user can fix.

The CLI turns a ``JistEdgeError`` into a single line on stderr (`Error: ...`) and exit status 1,
so messages must name the file or option and say what was wrong.
"""


class JistEdgeError(Exception):
    """A user-facing error: bad input, a corrupt or mismatched file, a missing tool."""


class IntegrityError(JistEdgeError):
    """A file on disk does not match the checksum or metadata that describes it."""


class BadFrame(JistEdgeError):
    """A frame that cannot be encoded (empty, wrong shape or type): streams skip and count these."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by the CLI's handler like Ctrl-C so that cleanup (staging folders,
    locks, `run`'s summary) happens on the way out."""


class Interrupted(JistEdgeError):
    """A command stopped by Ctrl-C or SIGTERM: the line says what was kept; exits 130 or 143."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def opencv_reason(exc: BaseException) -> str:
    """One short line from a cv2.error: what failed and where (no source path, no version banner)."""
    err, func = getattr(exc, "err", None), getattr(exc, "func", None)
    if err:
        return "{}{}".format(" ".join(str(err).split()), " in {}".format(func) if func else "")
    text = " ".join(str(exc).split())
    return text.split("error: ", 1)[-1]
