"""torch's thread count for training: small steps on shared cores run fastest on one thread
(one thread beat two by 4-8x on a shared 2-core machine), and the CLI must not import torch itself."""
import contextlib
from typing import Iterator

import torch


def set_torch_threads(threads: int) -> None:
    torch.set_num_threads(int(threads))


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run a block with `threads` torch threads, then restore the caller's count."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
