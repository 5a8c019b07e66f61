"""The last L frame descriptors of a stream, in a fixed buffer that never grows.

Keeping descriptors (not frames) is what makes streaming cheap: each new frame costs
one encoder pass, and the window for SeqGeM is already there.
"""
from typing import List

import numpy as np


class DescriptorRing(object):
    def __init__(self, capacity: int, dim: int) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be >= 1")
        self.capacity = int(capacity)
        self._buf = np.zeros((self.capacity, int(dim)), dtype=np.float32)
        self._ids = [-1] * self.capacity  # type: List[int]
        self._next = 0
        self._count = 0

    def push(self, descriptor: np.ndarray, frame_id: int) -> None:
        self._buf[self._next] = descriptor
        self._ids[self._next] = int(frame_id)
        self._next = (self._next + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def __len__(self) -> int:
        return self._count

    @property
    def full(self) -> bool:
        return self._count == self.capacity

    def _order(self) -> List[int]:
        start = (self._next - self._count) % self.capacity
        return [(start + i) % self.capacity for i in range(self._count)]

    def window(self) -> np.ndarray:
        """The held descriptors, oldest first (a view-free copy of at most L x D floats)."""
        return self._buf[self._order()]

    def frame_ids(self) -> List[int]:
        return [self._ids[i] for i in self._order()]

    def clear(self) -> None:
        self._next = 0
        self._count = 0
