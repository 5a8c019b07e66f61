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
