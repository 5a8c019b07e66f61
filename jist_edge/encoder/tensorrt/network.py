"""ONNX -> TensorRT network definition, weakly or strongly typed, and the FP32 head pin.

Weakly typed (TensorRT 8.x): an explicit-batch network; under FP16/INT8 flags the
descriptor head is pinned to FP32 layer by layer (``pin_fp32_head``). Strongly typed
(10+): the network takes every type from the ONNX file, so nothing is pinned; the FP32
head is already in the file (``fp16_onnx``).
"""
from typing import Any, Callable, Dict, List, Tuple

from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.encoder.tensorrt.fp32_layers import GraphNode, fp32_head_nodes
from jist_edge.encoder.tensorrt.policy import for_tensorrt
from jist_edge.errors import JistEdgeError


@for_tensorrt("8.0", "10.0")
def _explicit_batch_network(trt: Any, builder: Any) -> Any:
    return builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))


@for_tensorrt("10.0", "11.0")
def _strongly_typed_network(trt: Any, builder: Any) -> Any:
    return builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))


@for_tensorrt("11.0")
def _default_network(trt: Any, builder: Any) -> Any:
    """Strongly typed by default in 11, where the STRONGLY_TYPED flag is deprecated and ignored."""
    return builder.create_network(0)


# policy.network_flag_for_version -> the function that creates the network
CREATE_NETWORK = {
    "EXPLICIT_BATCH": _explicit_batch_network,
    "STRONGLY_TYPED": _strongly_typed_network,
    "": _default_network,
}  # type: Dict[str, Callable[[Any, Any], Any]]


def parse_onnx(trt: Any, builder: Any, logger: Any, onnx_path: str) -> Tuple[Any, Any]:
    """(network, parser) of ``onnx_path``; the parser must live as long as the network (it owns the weights)."""
    flag = trt_policy.network_flag_for_version(str(trt.__version__))
    network = CREATE_NETWORK[flag](trt, builder)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as handle:
        ok = parser.parse(handle.read())
    if not ok:
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise JistEdgeError("TensorRT cannot parse {}: {}".format(onnx_path, "; ".join(errors) or "unknown error"))
    return network, parser


def network_nodes(trt: Any, network: Any) -> List[GraphNode]:
    """The parsed network's layers as GraphNodes, for the FP32-head rule."""
    nodes = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        inputs = [layer.get_input(j) for j in range(layer.num_inputs)]
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        is_float = all(tensor.dtype in (trt.float32, trt.float16) for tensor in outputs if tensor is not None)
        nodes.append(GraphNode(
            layer.name, str(layer.type),
            [tensor.name for tensor in inputs if tensor is not None],
            [tensor.name for tensor in outputs if tensor is not None],
            is_float=is_float and layer.type != trt.LayerType.CONSTANT,
        ))
    return nodes


@for_tensorrt("8.0", "10.0")
def pin_fp32_head(trt: Any, network: Any) -> List[str]:
    """Set precision and output types of the descriptor head to FP32; returns layer names."""
    trunk = {trt.LayerType.CONVOLUTION, trt.LayerType.SCALE, trt.LayerType.ACTIVATION, trt.LayerType.POOLING}
    names = fp32_head_nodes(
        network_nodes(trt, network),
        is_reduce=lambda n: n.kind == str(trt.LayerType.REDUCE),
        is_trunk=lambda n: n.kind in {str(t) for t in trunk},
    )
    wanted = set(names)
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.name in wanted:
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
    return names
