"""Every TensorRT name the code touches exists in every TensorRT version whose path touches it. No GPU.

``tests/data/tensorrt-api-names.json`` (a copy of ``shared/tensorrt-api-names.json``)
lists, per TensorRT version from 8.0.1 to 11.1, every public name the Python bindings
define (classes, methods, properties, enum members; extracted from NVIDIA's binding
sources). The code marks each function that runs on only some versions with
``@for_tensorrt(first, before)``; unmarked functions run on all of them.

The walk reads ``jist_edge/encoder/tensorrt/*.py`` (the backend included)
and collects, per function and its version range:
- every attribute in a chain rooted at the ``trt`` module (``trt.BuilderFlag.FP16``);
- every attribute in a chain rooted at a TensorRT object, which the code always names
  ``builder``, ``config``, ``network``, ``parser``, ``layer``, ``tensor``, ``engine``,
  ``context``, ``runtime``, ``profile``, ``logger`` or ``serialized`` (also as ``self.X``);
- ``getattr(<one of those>, "literal")``.
The names list is flat (not per class), so a name another class still defines is not
caught; the dispatch tests below add what the flat list cannot see: that each version
is routed only to functions marked for it.
"""
import ast
import json
import os

import pytest

from jist_edge.encoder.tensorrt import calibrator, compiler, network, policy, probe, runner

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
REPO = os.path.dirname(HERE)
NAMES_FILE = os.path.join(HERE, "data", "tensorrt-api-names.json")
SHARED_NAMES_FILE = os.path.join(REPO, "..", "shared", "tensorrt-api-names.json")
TRT_DIR = os.path.join(REPO, "jist_edge", "encoder", "tensorrt")
SOURCES = [os.path.join(TRT_DIR, name) for name in sorted(os.listdir(TRT_DIR)) if name.endswith(".py")]

TRT_MODULES = {"trt", "tensorrt"}
TRT_OBJECTS = {"builder", "config", "network", "parser", "layer", "tensor", "engine", "context", "runtime",
               "profile", "logger", "serialized"}
ALL_VERSIONS = ("8.0", None)


def load_names():
    with open(NAMES_FILE) as handle:
        versions = json.load(handle)["versions"]
    return {version: set(names) for version, names in versions.items()}


NAMES = load_names()


def _decorator_range(node):
    """The literal (first, before) of a @for_tensorrt(...) decorator, or None."""
    for deco in node.decorator_list:
        func = deco.func if isinstance(deco, ast.Call) else None
        name = getattr(func, "id", None) or getattr(func, "attr", None)
        if name != "for_tensorrt":
            continue
        args = [_literal(a) for a in deco.args]
        if not args or not all(isinstance(a, str) or a is None for a in args):
            raise AssertionError("line {}: @for_tensorrt needs literal version strings".format(node.lineno))
        return (args[0], args[1] if len(args) > 1 else None)
    return None


def _literal(node):
    """The value of a literal node (ast.Str on Python 3.6/3.7, ast.Constant after), else the node."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return node


def _chain(node):
    """(root name, [attribute names]) of a.b(...).c[...].d, or (None, [])."""
    attrs = []
    while True:
        if isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            break
    attrs.reverse()
    if isinstance(node, ast.Name):
        if node.id == "self" and attrs and attrs[0] in TRT_OBJECTS:
            return attrs[0], attrs[1:]
        return node.id, attrs
    return None, []


class _Collector(ast.NodeVisitor):
    """(line, function, version range, TensorRT name) for every use in a source file."""

    def __init__(self):
        self.uses = []
        self.ranges = {}  # function name -> its @for_tensorrt range
        self._stack = [("<module>", ALL_VERSIONS)]

    def _scope(self, node):
        marked = _decorator_range(node)
        if marked is not None:
            self.ranges[node.name] = marked
        for deco in node.decorator_list:
            self.visit(deco)
        self._stack.append((node.name, marked or self._stack[-1][1]))
        for child in node.body:
            self.visit(child)
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                self.visit(base)
        self._stack.pop()

    visit_FunctionDef = visit_ClassDef = _scope

    def _use(self, node, name):
        where, versions = self._stack[-1]
        self.uses.append((node.lineno, where, versions, name))

    def visit_Attribute(self, node):
        root, attrs = _chain(node)
        if root in TRT_MODULES or root in TRT_OBJECTS:
            # the outermost Attribute of a chain carries all of it; inner ones are its prefixes
            if not isinstance(getattr(node, "_parent", None), ast.Attribute):
                for attr in attrs:
                    if not attr.startswith("__") or attr == "__version__":
                        self._use(node, attr)
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
            name = _literal(node.args[1])
            root, attrs = _chain(node.args[0])
            if isinstance(name, str) and (root in TRT_MODULES or root in TRT_OBJECTS):
                for attr in attrs + [name]:
                    self._use(node, attr)
        self.generic_visit(node)


def collect(source, filename="<source>"):
    tree = ast.parse(source, filename)
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child._parent = parent
    collector = _Collector()
    collector.visit(tree)
    return collector


def missing_names(source, filename="<source>", names=None):
    """Human-readable lines: a TensorRT name used on a version whose bindings lack it."""
    names = NAMES if names is None else names
    problems = []
    for line, where, versions, name in collect(source, filename).uses:
        for version in sorted(names, key=policy.parse_version):
            if policy.in_range(version, versions) and name not in names[version]:
                problems.append("{}:{} {}: {} is not in TensorRT {}".format(
                    os.path.basename(filename), line, where, name, version))
    return problems


def _read(path):
    with open(path) as handle:
        return handle.read()


def test_the_names_file_covers_8_0_to_11_1_and_matches_shared():
    assert {"8.0.1", "8.2.1", "8.4.3", "8.5.1", "8.6.1", "10.0.1", "10.13.0", "10.16", "11.0", "11.1"} <= set(NAMES)
    if os.path.isfile(SHARED_NAMES_FILE):  # beside a checkout of main: the copy must not drift
        with open(SHARED_NAMES_FILE) as handle:
            assert json.load(handle)["versions"] == json.loads(_read(NAMES_FILE))["versions"]


@pytest.mark.parametrize("path", SOURCES, ids=os.path.basename)
def test_every_tensorrt_name_exists_on_its_path(path):
    assert missing_names(_read(path), path) == []


def test_the_walk_sees_the_code_it_must_check():
    """Guard against a walk that silently finds nothing (a renamed variable, a changed import)."""
    used = {}
    for path in SOURCES:
        for _, where, versions, name in collect(_read(path), path).uses:
            used.setdefault(name, set()).add(versions)
    for name, versions in [("STRONGLY_TYPED", ("10.0", "11.0")), ("EXPLICIT_BATCH", ("8.0", "10.0")),
                           ("OBEY_PRECISION_CONSTRAINTS", ("8.2", "10.0")), ("STRICT_TYPES", ("8.0", "8.2")),
                           ("FP16", ("8.0", "10.0")), ("IInt8EntropyCalibrator2", ("8.0", "10.0")),
                           ("int8_calibrator", ("8.0", "10.0")), ("platform_has_fast_fp16", ("8.0", "10.5")),
                           ("device_memory_size_v2", ("10.13", None)), ("device_memory_size", ("8.0", "10.13")),
                           ("execute_async_v3", ("8.5", None)), ("execute_async_v2", ("8.0", "8.5")),
                           ("max_workspace_size", ("8.0", "8.4")), ("set_memory_pool_limit", ("8.4", None)),
                           ("precision", ("8.0", "10.0")), ("build_serialized_network", ALL_VERSIONS),
                           ("deserialize_cuda_engine", ALL_VERSIONS), ("min_severity", ALL_VERSIONS)]:
        assert used.get(name) == {versions}, (name, used.get(name))


@pytest.mark.parametrize("snippet, wrong", [
    # a weakly typed flag on the strongly typed path: gone in 11
    ('@for_tensorrt("10.0")\ndef f(trt, config):\n    config.set_flag(trt.BuilderFlag.FP16)\n',
     {"FP16 is not in TensorRT 11.0", "FP16 is not in TensorRT 11.1"}),
    # bindings on every version: gone in 10
    ("def f(trt, engine):\n    return engine.num_bindings\n",
     {"num_bindings is not in TensorRT " + v for v in ("10.0.1", "10.13.0", "10.16", "11.0", "11.1")}),
    # a misspelt name fails everywhere
    ("def f(trt):\n    return trt.BuilderFlag.FP61\n",
     {"FP61 is not in TensorRT " + v for v in NAMES}),
    # getattr with a literal is read too; so is self.engine
    ('def f(builder):\n    return getattr(builder, "platform_has_fast_fp16")\n',
     {"platform_has_fast_fp16 is not in TensorRT 11.0", "platform_has_fast_fp16 is not in TensorRT 11.1"}),
    ("class R(object):\n    def m(self):\n        return self.engine.device_memory_size\n",
     {"device_memory_size is not in TensorRT 11.0", "device_memory_size is not in TensorRT 11.1"}),
    # a marked range that starts too early: OBEY_PRECISION_CONSTRAINTS came in 8.2
    ('@for_tensorrt("8.0", "10.0")\ndef f(trt, config):\n    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)\n',
     {"OBEY_PRECISION_CONSTRAINTS is not in TensorRT 8.0.1"}),
])
def test_the_check_catches_a_wrong_name(snippet, wrong):
    problems = missing_names(snippet)
    assert {p.split(": ", 1)[1] for p in problems} == wrong


def test_non_literal_range_is_refused():
    with pytest.raises(AssertionError, match="literal"):
        collect("FIRST = '10.0'\n@for_tensorrt(FIRST)\ndef f(trt):\n    pass\n")


# -- dispatch: each version reaches only functions marked for it -------------------------

VERSIONS = sorted(NAMES, key=policy.parse_version)


def _runs_on(func, version):
    return policy.in_range(version, getattr(func, "tensorrt_versions", ALL_VERSIONS))


def _dispatched(version):
    """The marked functions a version reaches, by the same policy calls the code makes."""
    typing = policy.typing_for_version(version)
    api = policy.api_for_version(version)
    chosen = [
        network.CREATE_NETWORK[policy.network_flag_for_version(version)],
        compiler.SET_WORKSPACE[policy.workspace_api_for_version(version)],
        probe.FAST_PRECISIONS[policy.fast_precision_source(version)],
        runner.DESCRIBE_IO[api], runner.EXECUTE[api],
        runner.DEVICE_MEMORY[policy.device_memory_api(version)],
    ]
    if api == policy.API_NAMED_V3:
        chosen.append(runner._bind_named)
    if typing == policy.WEAK:  # flags, the FP32 pin and the calibrator are reached only here
        chosen += [compiler._set_weak_flags, network.pin_fp32_head, calibrator.attach_calibrator,
                   calibrator.make_entropy_calibrator,
                   compiler.SET_PRECISION_CONSTRAINTS[policy.precision_constraint_flag(version)]]
    return chosen


@pytest.mark.parametrize("version", VERSIONS)
def test_each_version_is_routed_only_to_functions_marked_for_it(version):
    for func in _dispatched(version):
        assert _runs_on(func, version), "{} is not marked for TensorRT {}".format(func.__name__, version)


def test_every_marked_function_is_reached_by_some_version():
    """A marked function the dispatch test does not know would escape the check above."""
    reached = {f.__name__ for version in VERSIONS for f in _dispatched(version)}
    marked = set()
    for path in SOURCES:
        marked.update(collect(_read(path), path).ranges)
    assert marked and marked <= reached


@pytest.mark.parametrize("version", VERSIONS)
def test_recipes_use_only_flags_this_version_has(version):
    typing = policy.typing_for_version(version)
    for requested in ("fp32", "fp16", "int8", "best"):
        for fast in ((True, True), (True, False), (False, False)):
            plan = policy.resolve_precision(requested, fast[0], fast[1], force=True)
            recipe = policy.build_recipe(plan, typing)
            assert set(recipe.flags) <= NAMES[version]
            if typing == policy.STRONG:  # the weakly typed API is never reached there
                assert (recipe.flags, recipe.pin_fp32_head, recipe.calibrator) == ((), False, False)
                assert policy.int8_method_for_version(version) == "qdq"
