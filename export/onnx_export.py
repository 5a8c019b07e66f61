"""torch -> ONNX for the two bundle graphs, with the exporter chosen per opset.

TensorRT 8.2 (JetPack 4.6, the Jetson Nano) parses ONNX up to opset 13
(onnx/onnx-tensorrt docs/operators.md on the 8.2 branch: "TensorRT 8.2 supports
operators up to Opset 13"), so 13 is the default. torch's dynamo exporter has no
implementations below opset 18 and silently writes 18 when asked for less; the legacy
TorchScript exporter (``dynamo=False``) writes exactly the requested opset. So:
opset <= 17 uses the legacy exporter, opset >= 18 the dynamo one. Either way the
written opset is checked, and the batch axis is declared dynamic.
"""
import contextlib
import io
import logging
import warnings
from typing import Dict, Iterator, Tuple

import torch

from jist_edge.errors import JistEdgeError

DEFAULT_OPSET = 13
MIN_OPSET = 11
LEGACY_MAX_OPSET = 17
MAX_OPSET = 20


def exporter_for(opset: int) -> str:
    """'legacy' (TorchScript, dynamo=False) or 'dynamo' for this opset."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise JistEdgeError(
            "--opset {} is not supported: use {}..{} (TensorRT 8.2 on the Jetson Nano needs <= 13)".format(
                opset, MIN_OPSET, MAX_OPSET
            )
        )
    return "legacy" if opset <= LEGACY_MAX_OPSET else "dynamo"


def exporter_description(opset: int) -> str:
    if exporter_for(opset) == "legacy":
        return "torch.onnx.export(dynamo=False) (TorchScript exporter)"
    return "torch.onnx.export(dynamo=True, external_data=False)"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters warn about deprecation and print progress; our CLI prints its own."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        logger.setLevel(level)


def export_onnx(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: str,
    input_name: str,
    output_name: str,
    batch_name: str,
    opset: int,
) -> Dict[str, int]:
    """Write ``module`` as one self-contained ONNX file with a dynamic axis 0; returns opset and IR version."""
    kind = exporter_for(opset)
    module = module.eval()
    with torch.no_grad(), _quiet():
        if kind == "legacy":
            torch.onnx.export(
                module,
                (example,),
                path,
                dynamo=False,
                opset_version=opset,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: {0: batch_name}, output_name: {0: batch_name}},
                do_constant_folding=True,
            )
        else:
            batch = torch.export.Dim(batch_name, min=1, max=4096)
            torch.onnx.export(
                module,
                (example,),
                path,
                dynamo=True,
                external_data=False,
                opset_version=opset,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_shapes={input_name: {0: batch}},
                verbose=False,
            )
    return check_written(path, opset)


def check_written(path: str, opset: int) -> Dict[str, int]:
    """The file must hold the requested opset and all weights inline (no external data)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    versions = {imp.domain or "ai.onnx": imp.version for imp in model.opset_import}
    if versions.get("ai.onnx") != opset:
        raise JistEdgeError(
            "the exporter wrote opset {} to {}, not the requested {}".format(versions.get("ai.onnx"), path, opset)
        )
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise JistEdgeError("the exporter put weights of {} into an external file".format(path))
    onnx.checker.check_model(model)
    return {"opset": opset, "ir_version": int(model.ir_version)}


def example_inputs(height: int, width: int, seq_len: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Trace inputs whose batch (2) differs from the parity check's, so a frozen batch shows."""
    generator = torch.Generator().manual_seed(1234)
    frames = torch.randn(2, 3, height, width, generator=generator)
    sequences = torch.randn(2, seq_len, 3, height, width, generator=generator)
    return frames, sequences
