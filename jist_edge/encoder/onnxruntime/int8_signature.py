"""The CPU INT8 model's header and bytes signed together with a key of this machine's user.

The header is a JSON file anyone who shares an engine cache can edit: without a signature
another bundle's INT8 model with a recomputed ``model_sha256`` would run, and
``fidelity.passed`` set to true would let ``--precision best`` use a model that failed its
gate. An HMAC-SHA256 over the canonical header (which holds the model's sha256, the bundle's
encoder digest and the calibration set) with a secret key that never leaves this user's
config folder makes any edit, and any model made elsewhere, show. Standard library only.
"""
import binascii
import hashlib
import hmac
import json
import os
import secrets
import stat
from typing import Any, Dict

from jist_edge.errors import JistEdgeError

KEY_ENV = "JIST_EDGE_SIGNING_KEY"
KEY_BYTES = 32


def key_path() -> str:
    """$JIST_EDGE_SIGNING_KEY, else $XDG_CONFIG_HOME/jist-edge/signing.key, else ~/.config/jist-edge/signing.key."""
    given = os.environ.get(KEY_ENV)
    if given:
        return os.path.abspath(given)
    config = os.environ.get("XDG_CONFIG_HOME")
    if not config:
        home = os.environ.get("HOME", "")
        if not home.strip():
            raise JistEdgeError("HOME is empty: set HOME (or ${}) so the CPU INT8 model's signing key has a "
                                "place".format(KEY_ENV))
        config = os.path.join(home, ".config")
    return os.path.join(config, "jist-edge", "signing.key")


def _read_key(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise JistEdgeError("cannot read the signing key {}: {}".format(path, exc.strerror))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise JistEdgeError("the signing key {} is not a regular file".format(path))
        text = os.read(fd, 4 * KEY_BYTES).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        key = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise JistEdgeError("the signing key {} is damaged; remove it (CPU INT8 models signed with it must then "
                            "be made again)".format(path))
    return key


def signing_key(create: bool) -> bytes:
    """This user's key; made (0600, never through a link) on first use when ``create``."""
    path = key_path()
    if not os.path.lexists(path) and create:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            return _read_key(path)  # another process made it just now
        except OSError as exc:
            raise JistEdgeError("cannot create the signing key {}: {}".format(path, exc.strerror))
        try:
            os.write(fd, (binascii.hexlify(secrets.token_bytes(KEY_BYTES)).decode("ascii") + "\n").encode("ascii"))
        finally:
            os.close(fd)
    if not os.path.lexists(path):
        raise JistEdgeError("no signing key at {}: CPU INT8 models are signed by the machine that made them".format(
            path))
    return _read_key(path)


def _canonical(header: Dict[str, Any]) -> bytes:
    rest = {k: v for k, v in header.items() if k != "signature"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def sign(header: Dict[str, Any], model_digest: str, create: bool = True) -> str:
    """``hmac-sha256:HEX`` over the header (all but its signature) and the model's sha256."""
    mac = hmac.new(signing_key(create), _canonical(header) + b"\0" + model_digest.encode("ascii"), hashlib.sha256)
    return "hmac-sha256:" + mac.hexdigest()


def signature_ok(header: Dict[str, Any], model_digest: str) -> bool:
    """Whether ``header['signature']`` signs this header and model here (False without a key)."""
    given = header.get("signature")
    if not isinstance(given, str):
        return False
    try:
        expected = sign(header, model_digest, create=False)
    except (JistEdgeError, ValueError):
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii"))

