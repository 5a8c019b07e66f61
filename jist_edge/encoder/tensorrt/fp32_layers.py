"""Which layers of the encoder must stay FP32 under FP16/INT8: the descriptor head.

After the ResNet-18 trunk come an L2 normalization across channels, GeM
(clamp, x**p, mean over H,W, **(1/p)), a Linear and another L2 normalization. In
FP16 the powers and sums of small values underflow (x**3 of 1e-3 is 1e-9, below
FP16's smallest subnormal 6e-8), so everything from the trunk's output on runs in
FP32; it is about 0.01 % of the encoder's work.

The rule is the same on an ONNX graph and on a parsed TensorRT network: find the
first reduction (ReduceL2/ReduceSum/ReduceMean/..., TensorRT's REDUCE layer), walk up
its data input through non-trunk layers (an elementwise x**2, abs) to the trunk's
output tensor, and take every layer downstream of that tensor, plus the layers that
feed it from parameters alone (GeM's 1/p). Layers that do not produce floating point
values (shape arithmetic, constants) are left alone.
"""
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

# ONNX op types that start the head / belong to the trunk.
ONNX_REDUCE_OPS = frozenset([
    "ReduceL2", "ReduceL1", "ReduceSum", "ReduceSumSquare", "ReduceMean", "ReduceMax",
    "ReduceLogSumExp", "LpNormalization", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool",
])
ONNX_TRUNK_OPS = frozenset(["Conv", "BatchNormalization", "Relu", "MaxPool", "Add"])
ONNX_NON_FLOAT_OPS = frozenset([
    "Constant", "Shape", "ConstantOfShape", "Range", "Size", "NonZero", "Equal", "Less",
    "Greater", "Not", "And", "Or",
])


class GraphNode(object):
    """A layer reduced to what the rule needs: name, kind, tensor names in and out."""

    def __init__(self, name: str, kind: str, inputs: Sequence[str], outputs: Sequence[str],
                 is_float: bool = True) -> None:
        self.name = name
        self.kind = kind
        self.inputs = [t for t in inputs if t]
        self.outputs = [t for t in outputs if t]
        self.is_float = is_float

    def __repr__(self) -> str:
        return "GraphNode({!r}, {})".format(self.name, self.kind)


def fp32_head_nodes(
    nodes: Sequence[GraphNode],
    is_reduce: Callable[[GraphNode], bool],
    is_trunk: Callable[[GraphNode], bool],
) -> List[str]:
    """Names of the float-producing layers from the trunk's output on, in graph order.

    ``nodes`` must be in topological order (ONNX graphs and TensorRT networks are).
    Returns [] when the graph has no reduction (nothing to pin).
    """
    region = head_region(nodes, is_reduce, is_trunk)
    if region is None:
        return []
    chosen = set(region[1])
    return [n.name for n in nodes if n.name in chosen and n.is_float]


def head_region(
    nodes: Sequence[GraphNode],
    is_reduce: Callable[[GraphNode], bool],
    is_trunk: Callable[[GraphNode], bool],
) -> Optional[Tuple[str, List[str]]]:
    """(the trunk's output tensor, every node of the head in graph order, constants included).

    None when the graph has no reduction. The head is what reads that tensor, directly
    or not, plus what feeds the head from parameters alone (GeM's 1/p, clip bounds).
    """
    producer = {}  # type: Dict[str, GraphNode]
    for node in nodes:
        for tensor in node.outputs:
            producer[tensor] = node
    first = next((n for n in nodes if is_reduce(n)), None)
    if first is None or not first.inputs:
        return None
    # walk up the data input to the tensor the trunk produced
    start = first.inputs[0]
    seen = set()  # type: Set[str]
    while start in producer and not is_trunk(producer[start]) and producer[start].inputs:
        node = producer[start]
        if node.name in seen:
            break
        seen.add(node.name)
        start = node.inputs[0]
    reached = {start}
    chosen = set()  # type: Set[str]
    for node in nodes:
        if any(t in reached for t in node.inputs):
            reached.update(node.outputs)
            chosen.add(node.name)
    # side inputs of the head computed from parameters only (1/p of GeM): FP32 too
    upstream = _upstream(start, producer)
    frontier = [t for n in nodes if n.name in chosen for t in n.inputs if t not in reached]
    while frontier:
        node = producer.get(frontier.pop())
        if node is None or node.name in chosen or any(t in upstream for t in node.outputs):
            continue
        chosen.add(node.name)
        frontier.extend(t for t in node.inputs if t not in upstream)
    return start, [n.name for n in nodes if n.name in chosen]


def _upstream(tensor: str, producer: Dict[str, GraphNode]) -> Set[str]:
    """Every tensor the trunk output depends on (the whole trunk)."""
    seen = set()  # type: Set[str]
    stack = [tensor]
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        node = producer.get(t)
        if node is not None:
            stack.extend(node.inputs)
    return seen


def onnx_nodes(model) -> List[GraphNode]:
    """GraphNodes of an ``onnx.ModelProto`` (host tool; the device never needs onnx)."""
    out = []
    for i, node in enumerate(model.graph.node):
        name = node.name or "{}_{}".format(node.op_type, i)
        out.append(GraphNode(name, node.op_type, list(node.input), list(node.output),
                             is_float=node.op_type not in ONNX_NON_FLOAT_OPS))
    return out


def onnx_fp32_head(model) -> List[str]:
    """Node names of an ONNX encoder that must stay FP32 (and un-quantized)."""
    return fp32_head_nodes(onnx_nodes(model), _onnx_is_reduce, _onnx_is_trunk)


def onnx_head_region(model) -> Optional[Tuple[str, List[str]]]:
    """(trunk output tensor, head node names incl. constants) of an ONNX encoder; see head_region."""
    return head_region(onnx_nodes(model), _onnx_is_reduce, _onnx_is_trunk)


def _onnx_is_reduce(node: GraphNode) -> bool:
    return node.kind in ONNX_REDUCE_OPS


def _onnx_is_trunk(node: GraphNode) -> bool:
    return node.kind in ONNX_TRUNK_OPS
