"""The frame ring: bounded, newest-first, never blocks the producer, counts every drop."""
import threading
import time

import pytest

from jist_edge.stream.frame_ring import FrameRing


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        FrameRing(0)


@pytest.mark.parametrize("capacity", [1, 2, 3])
def test_put_never_waits_for_a_consumer_and_never_grows(capacity):
    ring = FrameRing(capacity)
    consumer_may_start = threading.Event()
    sizes = []

    def produce():
        for i in range(1000):
            assert ring.put(i)
            sizes.append(len(ring))
        consumer_may_start.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    # Nobody calls get() until the producer has put everything: a put that waited for a
    # consumer would never finish.
    assert consumer_may_start.wait(30.0)
    producer.join(5.0)
    assert not producer.is_alive()
    assert max(sizes) == capacity and len(ring) == capacity and ring.high_water == capacity
    assert ring.puts == 1000 and ring.dropped == 1000 - capacity
    assert ring.get(0) == 999
    assert ring.dropped == 999 and ring.gets == 1 and len(ring) == 0


def test_slow_consumer_always_gets_the_newest_and_counts_add_up():
    ring = FrameRing(2)
    total = 3000
    received = []

    def produce():
        for i in range(total):
            ring.put(i)
        ring.close()

    def consume():
        while True:
            item = ring.get(1.0)
            if item is None:
                if ring.closed:
                    return
                continue
            received.append(item)
            time.sleep(0.002)  # slower than the producer

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    produce()
    consumer.join(30.0)
    assert not consumer.is_alive()
    assert received == sorted(set(received))  # never an older item after a newer one
    assert received[-1] == total - 1  # the newest item is never the one dropped
    assert len(received) + ring.dropped == total
    assert ring.dropped > 0
    assert ring.high_water <= ring.capacity


def test_get_times_out_and_put_after_close_is_refused():
    ring = FrameRing(1)
    assert ring.get(0.01) is None and not ring.closed
    ring.put("a")
    ring.put("b")
    ring.close()
    assert not ring.put("c")
    assert ring.get(0.01) == "b"  # what was left is still handed out
    assert ring.get(0.01) is None and ring.get(None) is None
    assert ring.dropped == 1 and ring.puts == 2


def test_close_wakes_a_blocked_consumer():
    ring = FrameRing(2)
    result = []
    waiter = threading.Thread(target=lambda: result.append(ring.get(None)), daemon=True)
    waiter.start()
    waiter.join(0.05)
    assert waiter.is_alive()  # blocked: nothing was put
    ring.close()
    waiter.join(5.0)
    assert not waiter.is_alive() and result == [None]


def test_put_wakes_a_blocked_consumer():
    ring = FrameRing(2)
    result = []
    waiter = threading.Thread(target=lambda: result.append(ring.get(None)), daemon=True)
    waiter.start()
    ring.put("frame")
    waiter.join(5.0)
    assert result == ["frame"] and ring.dropped == 0
