"""Which files an ONNX graph reads besides itself (external data), found without the onnx package.

ONNX Runtime and TensorRT read a tensor's bytes from ``location`` (relative to the graph)
when the tensor says its data is external. A bundle's checksums cover only the files its
manifest lists, so every such location must be one of them: this walks the protobuf wire
format (ModelProto -> graphs, nodes, attributes, functions -> TensorProto) and returns every
location named. The runtime has no onnx package; the wire format is small and stable.
"""
from typing import Dict, List, Set, Tuple

from jist_edge.errors import IntegrityError

MAX_DEPTH = 64  # graphs nest in If/Loop attributes; deeper than this is an attack, not a model

# message kind -> {field number: message kind of that (repeated) sub-message}
_SCHEMA = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "function": {7: "node", 11: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "entry": {},
}  # type: Dict[str, Dict[int, str]]
_TENSOR_EXTERNAL_DATA = 13
_TENSOR_DATA_LOCATION = 14
_EXTERNAL = 1


class _Malformed(Exception):
    pass


def _varint(data: memoryview, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: memoryview):  # type: ignore
    """(field number, wire type, value) of one message: an int for varints, a memoryview for bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 5:
            value, pos = None, pos + 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _Malformed("a field runs past the end")
            value, pos = data[pos:pos + length], pos + length
        else:
            raise _Malformed("wire type {}".format(wire))
        if pos > len(data):
            raise _Malformed("truncated field")
        yield number, wire, value


def _tensor(data: memoryview, found: Set[str]) -> None:
    external = False
    locations = []  # type: List[str]
    for number, wire, value in _fields(data):
        if number == _TENSOR_DATA_LOCATION and wire == 0:
            external = external or value == _EXTERNAL
        elif number == _TENSOR_EXTERNAL_DATA and wire == 2:
            key = val = None
            for n, w, v in _fields(value):
                if w == 2 and n in (1, 2):
                    text = bytes(v).decode("utf-8", "replace")
                    key, val = (text, val) if n == 1 else (key, text)
            if key == "location":
                locations.append(val or "")
            external = external or bool(key)
    if external and not locations:
        locations.append("")  # external data with no location: refused by the caller
    found.update(locations)


def _walk(data: memoryview, kind: str, found: Set[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Malformed("graphs nested deeper than {}".format(MAX_DEPTH))
    children = _SCHEMA[kind]
    for number, wire, value in _fields(data):
        child = children.get(number)
        if child is None or wire != 2:
            continue
        if child == "tensor":
            _tensor(value, found)
        else:
            _walk(value, child, found, depth + 1)


def external_locations(path: str) -> List[str]:
    """Every external-data location the ONNX file at ``path`` names (IntegrityError if it does not parse)."""
    try:
        with open(path, "rb") as handle:
            data = memoryview(handle.read())
    except OSError as exc:
        raise IntegrityError("cannot read {}: {}".format(path, exc.strerror))
    found = set()  # type: Set[str]
    try:
        _walk(data, "model", found, 0)
    except (_Malformed, RecursionError) as exc:
        raise IntegrityError("{} is not a readable ONNX file ({})".format(path, exc))
    return sorted(found)
