import numpy as np

from jist_edge.pipeline.descriptor_ring import DescriptorRing
from jist_edge.encoder.seqgem import seqgem, sliding_windows


def test_ring_keeps_last_l_in_order_and_never_grows():
    ring = DescriptorRing(3, 4)
    buffer_id = id(ring._buf)
    for i in range(10):
        ring.push(np.full(4, i, np.float32), frame_id=100 + i)
        assert len(ring) == min(i + 1, 3)
        assert ring.full == (i >= 2)
        assert ring.frame_ids() == [100 + j for j in range(max(0, i - 2), i + 1)]
        assert np.array_equal(ring.window()[:, 0], np.arange(max(0, i - 2), i + 1, dtype=np.float32))
    assert id(ring._buf) == buffer_id and ring._buf.shape == (3, 4)
    ring.clear()
    assert len(ring) == 0 and ring.window().shape == (0, 4)


def test_streaming_windows_equal_offline_sliding_windows():
    rng = np.random.default_rng(1)
    frames = np.abs(rng.normal(size=(40, 16))).astype(np.float32)
    offline = sliding_windows(frames, 5, p=2.7)
    ring = DescriptorRing(5, 16)
    streamed = []
    for i, desc in enumerate(frames):
        ring.push(desc, i)
        if ring.full:
            streamed.append(seqgem(ring.window(), p=2.7))
    assert np.abs(np.stack(streamed) - offline).max() < 1e-5
