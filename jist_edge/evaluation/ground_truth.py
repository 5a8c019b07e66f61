"""The paper's ground truth, defined once: a database frame is a positive for a query frame
within ``DEFAULT_THRESHOLD`` metres (25 m); a sequence is a positive when it holds one."""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from jist_edge.positions import POSITIVE_RADIUS_M

DEFAULT_THRESHOLD = POSITIVE_RADIUS_M


def near_frames(query_positions: np.ndarray, db_positions: np.ndarray, threshold: float) -> List[np.ndarray]:
    """For each query frame, the sorted database frame rows within ``threshold`` metres."""
    q = np.asarray(query_positions, dtype=np.float64).reshape(-1, 2)
    db = np.asarray(db_positions, dtype=np.float64).reshape(-1, 2)
    limit = float(threshold) ** 2
    out = []  # type: List[np.ndarray]
    block = max(1, (1 << 22) // max(1, db.shape[0]))
    for start in range(0, q.shape[0], block):
        chunk = q[start:start + block]
        d2 = ((chunk[:, None, :] - db[None, :, :]) ** 2).sum(axis=2)
        with np.errstate(invalid="ignore"):
            hits = d2 <= limit  # NaN (unknown position) is never near
        out.extend(np.nonzero(row)[0] for row in hits)
    return out


def sequence_positives(query_seq_frames: np.ndarray, near: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Per query sequence: the database frame rows near any of its frames (sorted, unique)."""
    result = []
    for rows in query_seq_frames:
        parts = [near[int(r)] for r in rows]
        result.append(np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64))
    return result


def query_positives(query_positions: np.ndarray, query_seq_frames: np.ndarray, db_positions: np.ndarray,
                    threshold: float) -> Tuple[List[np.ndarray], np.ndarray]:
    """The paper's ground truth: per query sequence, the database frame rows near any of its
    frames, and whether it has any (queries without are left out of the recall)."""
    positives = sequence_positives(query_seq_frames, near_frames(query_positions, db_positions, threshold))
    return positives, np.array([len(p) > 0 for p in positives], dtype=bool)


def is_positive(db_seq_ids: np.ndarray, near_db_frames: np.ndarray, db_seq_frames: np.ndarray) -> np.ndarray:
    """Whether each predicted database sequence holds one of the near frames."""
    out = np.zeros(len(db_seq_ids), dtype=bool)
    if len(near_db_frames) == 0:
        return out
    for i, s in enumerate(db_seq_ids):
        if s < 0:
            continue
        frames = db_seq_frames[int(s)]
        pos = np.searchsorted(near_db_frames, frames)
        pos = np.minimum(pos, len(near_db_frames) - 1)
        out[i] = bool((near_db_frames[pos] == frames).any())
    return out


def window_table(windows: Sequence[Sequence[int]], query_positions: Dict[int, Sequence[float]]):
    """A streamed pass as a frame table: its frame indices (sorted), their positions (NaN when
    unknown) and each window's rows into them."""
    frames = sorted(set(int(i) for w in windows for i in w))
    row_of = {idx: row for row, idx in enumerate(frames)}
    q_pos = np.full((len(frames), 2), np.nan)
    for idx, row in row_of.items():
        if idx in query_positions:
            q_pos[row] = query_positions[idx]
    q_rows = np.array([[row_of[int(i)] for i in w] for w in windows], dtype=np.int64)
    return frames, q_pos, q_rows
