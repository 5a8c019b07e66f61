"""Numbers read from a shared file (map, bundle, header): checked for type and finiteness at load.

A hand-edited or re-signed file can hold a string, a list, NaN or 1e308 where a number
belongs; each check names the file and field, so the error is one line instead of a
traceback (or a NaN) far from where the value came in.
"""
import math
from typing import Any, Optional

import numpy as np

from jist_edge.errors import IntegrityError

# GeM and SeqGeM p: 1 is the mean, large p the max; trained JIST models sit near 3. Beyond this
# range the pooling degenerates (p=1e6 gives all-zero float32 descriptors, p<=0 is not a mean).
POOLING_P_RANGE = (0.5, 16.0)


def number(value: Any, where: str, field: str, low: Optional[float] = None, high: Optional[float] = None,
           integer: bool = False, low_open: bool = False) -> float:
    """``value`` as a finite number within [low, high] (low excluded when ``low_open``), or IntegrityError."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise IntegrityError("{}: field {!r} must be {}, not {!r}".format(
            where, field, "a whole number" if integer else "a number", value))
    if not math.isfinite(value):
        raise IntegrityError("{}: field {!r} is {!r}, not a finite number".format(where, field, value))
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        raise IntegrityError("{}: field {!r} is {!r}, outside {}{}, {}]".format(
            where, field, value, "(" if low_open else "[", low, high))
    return value


# An encoder whose weights hold NaN, or that overflows (3e38), or a pooling that underflows to zero
# gives descriptors whose every distance is meaningless: refused where they are made, not matched.
LIMIT = 1e15  # squared-L2 distances of descriptors beyond this overflow float32


def check_descriptors(descriptors: Any, where: str, zero_ok: bool = True) -> np.ndarray:
    """``descriptors`` (N, D) unchanged, or IntegrityError when any is non-finite or huge, or (unless
    ``zero_ok``: a black camera frame may give a zero one) all zero."""
    desc = np.asarray(descriptors)
    if desc.size == 0:
        raise IntegrityError("{}: the encoder gave no descriptor values (shape {})".format(where, desc.shape))
    finite = np.isfinite(desc)
    if not finite.all():
        raise IntegrityError("{}: the encoder gave non-finite descriptors (NaN or infinity in {} of {} values); "
                             "the model's weights or manifest are broken".format(where, int((~finite).sum()), desc.size))
    peak = float(np.abs(desc).max())
    if peak > LIMIT:
        raise IntegrityError("{}: the encoder gave descriptors of magnitude {:.3g}, beyond {:.0g}; the model's "
                             "weights are broken".format(where, peak, LIMIT))
    flat = desc.reshape(desc.shape[0], -1) if desc.ndim > 1 else desc.reshape(1, -1)
    if not zero_ok and not np.abs(flat).max(axis=1).all():
        raise IntegrityError("{}: the encoder gave all-zero descriptors, which match every place equally; the "
                             "model (e.g. its GeM p) is degenerate".format(where))
    return desc


def pooling_p(value: Any, where: str, field: str) -> float:
    return number(value, where, field, POOLING_P_RANGE[0], POOLING_P_RANGE[1])
