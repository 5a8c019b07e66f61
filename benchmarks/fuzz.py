"""Coverage-guided fuzzing (atheris, libFuzzer) of every parser of what a shared bundle or map brings.

The first input byte picks the target (benchmarks.fuzz_targets: bundle and map manifests,
distance statistics, positions CSVs, VPR names, the hnswlib structure check, CPU INT8 and
TensorRT engine headers, ONNX external-data references); the rest is its input. A target may
return or raise JistEdgeError; anything else is a finding, recorded (target, exception, input
in hex) in the --findings JSON and the run goes on. Counts per target go to --stats.

    pip install 'jist-edge[fuzz]'
    python -m jist_edge.benchmarks.fuzz --seconds 60 [--findings f.json --stats s.json]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Dict, List

CORPUS_LIMIT = 1 << 16  # bytes per input: the parsers are structural, large inputs only cost time


class Fuzz(object):
    """The dispatching input function and its counters."""

    def __init__(self, targets: List[Any], scratch: str, findings_path: str, stats_path: str) -> None:
        self.targets = targets
        self.scratch = scratch
        self.findings_path = findings_path
        self.stats_path = stats_path
        self.runs = {name: 0 for name, _ in targets}
        self.refused = {name: 0 for name, _ in targets}
        self.findings = []  # type: List[Dict[str, Any]]
        self.seen = set()  # type: set
        self.started = time.time()

    def __call__(self, data: bytes) -> None:
        from jist_edge.errors import JistEdgeError

        if not data:
            return
        name, target = self.targets[data[0] % len(self.targets)]
        self.runs[name] += 1
        try:
            target(bytes(data[1:]), self.scratch)
        except JistEdgeError:
            self.refused[name] += 1
        except Exception as exc:  # the point: every other exception is a finding
            self._found(name, exc, bytes(data[1:]))
        if sum(self.runs.values()) % 2000 == 0:
            self.save()

    def _found(self, name: str, exc: Exception, data: bytes) -> None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        key = (name, type(exc).__name__, frame.filename, frame.lineno)
        if key in self.seen:
            return
        self.seen.add(key)
        self.findings.append({"target": name, "exception": type(exc).__name__, "message": str(exc)[:300],
                              "where": "{}:{}".format(os.path.basename(frame.filename), frame.lineno),
                              "input_hex": data[:4096].hex()})
        self.save()

    def save(self) -> None:
        stats = {"runs": self.runs, "refused": self.refused, "total_runs": sum(self.runs.values()),
                 "findings": len(self.findings), "seconds": round(time.time() - self.started, 1)}
        for path, obj in ((self.stats_path, stats), (self.findings_path, self.findings)):
            if path:
                with open(path + ".tmp", "w") as handle:
                    json.dump(obj, handle, indent=1)
                os.replace(path + ".tmp", path)


def write_corpus(folder: str, targets: List[Any], seeds: Dict[str, List[bytes]]) -> int:
    """Each seed prefixed with its target's byte, one file each."""
    count = 0
    for number, (name, _) in enumerate(targets):
        for seed in seeds.get(name, []):
            with open(os.path.join(folder, "{}-{}".format(name, count)), "wb") as handle:
                handle.write(bytes([number]) + seed)
            count += 1
    return count


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="Fuzzing time (libFuzzer -max_total_time).")
    parser.add_argument("--findings", default="fuzz-findings.json", help="Findings (JSON list).")
    parser.add_argument("--stats", default="fuzz-stats.json", help="Runs per target (JSON).")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer -seed.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # the scratch folder, in the fuzzing process
    args = parser.parse_args(argv)
    try:
        import atheris  # noqa: F401  (optional: pip install 'jist-edge[fuzz]')
    except ImportError:
        sys.exit("Error: fuzzing needs atheris: pip install 'jist-edge[fuzz]'")
    if args.child:
        return _fuzz(args)
    # libFuzzer ends its process with exit() at the time limit: fuzz in a child, clean up and report here
    scratch = tempfile.mkdtemp(prefix="jist-edge-fuzz-")
    try:
        cmd = [sys.executable, "-m", "jist_edge.benchmarks.fuzz", "--seconds", str(args.seconds), "--findings",
               os.path.abspath(args.findings), "--stats", os.path.abspath(args.stats), "--seed", str(args.seed),
               "--child", scratch]
        code = subprocess.call(cmd, env=dict(os.environ, JIST_EDGE_SIGNING_KEY=os.path.join(scratch, "signing.key")))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not os.path.isfile(args.stats):
        sys.exit("Error: the fuzzing process failed before it counted anything (exit {})".format(code))
    with open(args.stats) as handle:
        stats = json.load(handle)
    print("fuzzed {} inputs in {} s: {} refused cleanly, {} findings ({})".format(
        stats["total_runs"], stats["seconds"], sum(stats["refused"].values()), stats["findings"], args.findings))
    for name in sorted(stats["runs"]):
        print("  {:16} {:>8} runs {:>8} refused".format(name, stats["runs"][name], stats["refused"][name]))
    return 0 if code == 0 and stats["findings"] == 0 else 1


def _fuzz(args: Any) -> int:
    import atheris

    with atheris.instrument_imports():
        from jist_edge import bundle, checked_numbers, onnx_external  # noqa: F401  (instrumented for coverage)
        from jist_edge.encoder.onnxruntime import int8_model, int8_signature  # noqa: F401
        from jist_edge.encoder.tensorrt import cache  # noqa: F401
        from jist_edge import positions  # noqa: F401
        from jist_edge.filter import distance_stats  # noqa: F401
        from jist_edge.maps import drives, store  # noqa: F401
        from jist_edge.search import index_check  # noqa: F401
        from jist_edge.benchmarks import fuzz_targets
    corpus = os.path.join(args.child, "corpus")
    work = os.path.join(args.child, "work")
    os.makedirs(corpus)
    os.makedirs(work)
    seeds = write_corpus(corpus, fuzz_targets.TARGETS, fuzz_targets.seeds(work))
    fuzz = Fuzz(fuzz_targets.TARGETS, work, args.findings, args.stats)
    fuzz.save()
    sys.stderr.write("fuzzing {} targets for {} s from {} seeds\n".format(len(fuzz_targets.TARGETS), args.seconds,
                                                                         seeds))
    atheris.Setup([sys.argv[0], "-max_total_time={}".format(args.seconds), "-seed={}".format(args.seed),
                   "-max_len={}".format(CORPUS_LIMIT), "-rss_limit_mb=4096", "-print_final_stats=1", corpus], fuzz)
    atheris.Fuzz()  # libFuzzer exits the process at -max_total_time; save() ran every 2000 inputs
    return 0


if __name__ == "__main__":
    sys.exit(main())
