"""map build --ray: a local Ray instance with two workers builds the same files as a local build.

Real Ray (started here with two CPUs), real worker processes, a real SIGKILL of a worker
in the middle of a shard. Skipped where Ray is not installed (pip install 'jist-edge[cluster]').
"""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from jist_edge.encoder import create_encoder
from jist_edge.cli import main
from jist_edge.errors import JistEdgeError
from jist_edge.maps.build import build_map
from jist_edge.maps.drives import Drive

import map_routes
from optional_imports import import_or_skip
from test_drives import same_map_files

pytestmark = pytest.mark.slow
N = 45
LONG = 900  # frames: long enough to find a worker busy with a shard and kill it


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with two CPUs (tests using it skip where Ray is not installed)."""
    ray = import_or_skip("ray")
    from jist_edge.maps.cluster import start_local

    start_local(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def route(tiny_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-route")
    h, w = tiny_bundle.height, tiny_bundle.width
    video = str(root / "route.avi")
    map_routes.write_video(video, map_routes.route_frames(N, h, w, seed=3))
    map_routes.write_csv(str(root / "route.csv"), [(i, 2.0 * i, 7.0) for i in range(N)])
    map_routes.write_images(str(root / "second"), map_routes.route_frames(12, h, w, seed=4),
                            map_routes.positions(12, offset=500.0))
    long_video = str(root / "long.avi")
    map_routes.write_video(long_video, map_routes.route_frames(LONG, h, w, seed=6))
    return {"video": video, "csv": str(root / "route.csv"), "images": str(root / "second"), "long": long_video}


def test_ray_build_is_byte_identical_to_local(tiny_bundle, route, local_ray, tmp_path):
    from jist_edge.maps.cluster import RayEncoderPool

    drives = [Drive(route["video"], route["csv"]), Drive(route["images"])]
    local = build_map(tiny_bundle, drives, str(tmp_path / "local"), batch_size=4, encoder=create_encoder(tiny_bundle))
    pool = RayEncoderPool(tiny_bundle, batch_size=4, shard_frames=6)  # rounded up to 8: six shards on two workers
    remote = build_map(tiny_bundle, drives, str(tmp_path / "ray"), batch_size=4, encoder=pool)
    pool.close()
    assert pool.frames == N + 12 and pool.calls == 6 + 2
    same_map_files(remote.path, local.path)


def test_cli_ray_option(tiny_bundle, route, local_ray, tmp_path):
    out = str(tmp_path / "cli")
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--video", route["video"],
                                    "--positions", route["csv"], "--ray", "--shard-frames", "16", "--output", out,
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    local = build_map(tiny_bundle, route["video"], str(tmp_path / "local"), positions=route["csv"])
    same_map_files(out, local.path)


def _parent(pid):
    try:
        with open("/proc/{}/stat".format(pid)) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _ours(pid):
    """A process this test process started (Ray's raylet is our child, its workers the raylet's)."""
    for _ in range(4):
        pid = _parent(pid)
        if pid == os.getpid():
            return True
        if pid <= 1:
            return False
    return False


def _kill_first_busy_worker(stop, killed):
    """Poll the process table for one of our Ray workers running encode_shard (its title) and SIGKILL it."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/{}/cmdline".format(pid), "rb") as handle:
                    title = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if title.startswith("ray::encode_shard") and _ours(int(pid)):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.005)


def _build_while_killing(bundle, video, out, pool):
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_busy_worker, args=(stop, killed))
    killer.start()
    try:
        return build_map(bundle, video, out, batch_size=8, encoder=pool), killed
    finally:
        stop.set()
        killer.join()
        pool.close()


def test_killed_worker_is_retried_and_the_map_is_the_same(tiny_bundle, route, local_ray, tmp_path):
    from jist_edge.maps.cluster import RayEncoderPool

    pool = RayEncoderPool(tiny_bundle, batch_size=8, shard_frames=64, max_retries=3)
    remote, killed = _build_while_killing(tiny_bundle, route["long"], str(tmp_path / "ray"), pool)
    assert killed, "no worker was found running a shard"
    local = build_map(tiny_bundle, route["long"], str(tmp_path / "local"), batch_size=8)
    same_map_files(remote.path, local.path)


def test_killed_worker_without_retries_fails_in_one_line_and_writes_nothing(tiny_bundle, route, local_ray, tmp_path):
    from jist_edge.maps.cluster import RayEncoderPool

    out = str(tmp_path / "ray")
    pool = RayEncoderPool(tiny_bundle, batch_size=8, shard_frames=64, max_retries=0)
    with pytest.raises(JistEdgeError, match=r"the shard of frames \d+\.\.\d+ failed after 0 retries") as err:
        _build_while_killing(tiny_bundle, route["long"], out, pool)
    assert "\n" not in str(err.value) and "no map was written" in str(err.value)
    assert not os.path.exists(out) and os.listdir(str(tmp_path)) == []


def test_without_ray_the_option_says_how_to_install_it(tiny_bundle, route, tmp_path):
    """A real CLI process in which `import ray` fails."""
    out = str(tmp_path / "map")
    code = ("import sys; sys.modules['ray'] = None\n"
            "from jist_edge.cli import main\n"
            "main(sys.argv[1:])")
    proc = subprocess.run([sys.executable, "-c", code, "map", "build", "--model", tiny_bundle.path, "--video",
                           route["video"], "--ray", "--output", out], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert proc.returncode != 0
    assert "pip install 'jist-edge[cluster]'" in proc.stdout and "Traceback" not in proc.stdout
    assert not os.path.exists(out)
