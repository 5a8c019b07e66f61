"""A bounded hand-off of the newest frames from a capture thread to a slower consumer.

When inference is slower than the camera, queueing every frame would grow memory and
latency without bound; this ring keeps at most ``capacity`` items, ``put`` never
blocks (the oldest item is dropped), and ``get`` hands out the newest item and drops
the older ones, which are stale by then. Every dropped item is counted.
"""
import collections
import threading
import time
from typing import Any, Optional


class FrameRing(object):
    """Thread-safe; items are any objects (the capture thread puts Frames)."""

    def __init__(self, capacity: int = 2) -> None:
        if int(capacity) < 1:
            raise ValueError("ring capacity must be 1 or more, got {}".format(capacity))
        self.capacity = int(capacity)
        self._items = collections.deque()  # type: collections.deque
        self._cond = threading.Condition(threading.Lock())
        self.closed = False
        self.dropped = 0
        self.puts = 0
        self.gets = 0
        self.high_water = 0  # the most items ever held at once

    def put(self, item: Any) -> bool:
        """Add the newest item without waiting; False (item discarded) once the ring is closed."""
        with self._cond:
            if self.closed:
                return False
            while len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.puts += 1
            if len(self._items) > self.high_water:
                self.high_water = len(self._items)
            self._cond.notify()
            return True

    def get(self, timeout: Optional[float] = None) -> Optional[Any]:
        """The newest item (older ones are dropped), or None on timeout or when closed and empty."""
        deadline = None if timeout is None else time.time() + timeout
        with self._cond:
            while not self._items and not self.closed:
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.time()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if not self._items:
                return None
            item = self._items.pop()
            self.dropped += len(self._items)
            self._items.clear()
            self.gets += 1
            return item

    def close(self) -> None:
        """Wake every waiter; later puts are refused, gets drain what is left then return None."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
