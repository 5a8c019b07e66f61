"""What jist-edge writes and later trusts, in its two shapes, each written and checked here once.

A verified manifest folder (a model bundle, a map): every file is staged in a hidden
folder beside the target and listed in ``manifest.json`` with its size and sha256; the
manifest is signed last (``manifest_sha256`` over its other fields) and the folder is
swapped in whole, so an interrupted write never loads. Opening one reads the manifest;
its owner checks the schema and the digest, then every file is verified before anything
reads it.

A verified file with a header (a TensorRT engine, the CPU INT8 model): ``<file>.json``
beside it records what the file was made from and for, and the file's own sha256.
Loading compares every identity field with what this setup expects and refuses a
mismatch with one line naming the field, both values and why it matters; the checksum
is taken over the very bytes returned. The file is written before its header, so a
crash between the two renames leaves a header whose sha256 no longer matches.
"""
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from jist_edge.errors import IntegrityError, JistEdgeError
from jist_edge.fileio import (check_manifest_digest, file_record, kept_note, manifest_digest, read_json, sha256_bytes,
                              sha256_file, staged_directory, verify_files, write_bytes_atomic, write_json_atomic,
                              write_staged)
from jist_edge.locks import output_lock

MANIFEST_FILE = "manifest.json"
Writer = Tuple[str, Callable[[str], Any]]  # (file name in the folder, write(path))


class ManifestFolder(object):
    """One kind of manifest folder: ``noun`` for messages ("model bundle"), ``short`` for its files
    ("bundle"), ``remedy`` for a manifest that fails its digest ("export it again with ...")."""

    def __init__(self, noun: str, short: str, make: str, remedy: str) -> None:
        self.noun = noun
        self.short = short
        self.make = make
        self.remedy = remedy

    def read(self, path: str) -> Tuple[str, str, Dict[str, Any]]:
        """(absolute folder, manifest path, manifest): nothing checked yet but that it parses."""
        path = os.path.abspath(path)
        if not os.path.isdir(path):
            raise JistEdgeError("{} not found: {} (run {} first)".format(self.noun, path, self.make))
        manifest_path = os.path.join(path, MANIFEST_FILE)
        return path, manifest_path, read_json(manifest_path, self.short + " manifest")

    def check_digest(self, manifest: Dict[str, Any], where: str) -> None:
        check_manifest_digest(manifest, where, self.remedy)

    def verify(self, path: str, manifest: Dict[str, Any]) -> None:
        """Size and sha256 of every listed file, before anything opens one."""
        verify_files(path, manifest["files"], self.short)

    def write(self, out_dir: str, claim: Callable[[str], str], writers: Sequence[Writer], manifest: Dict[str, Any],
              sign: Optional[Callable[[Dict[str, Any]], None]] = None) -> str:
        """Stage every file, list them, sign the manifest, swap the folder in; returns the real folder.

        ``claim(out_dir)``: the folder to write, refusing what is not ours (before anything is
        touched); ``sign(manifest)``: the last fields before the digest (a bundle's identity)."""
        manifest = dict(manifest)
        with output_lock(out_dir, self.short + " output"):
            out_dir = claim(out_dir)
            kept = kept_note(out_dir, self.short)
            with staged_directory(out_dir) as stage:
                for name, write in writers:
                    write_staged(write, stage, out_dir, name, kept)
                manifest["files"] = {name: file_record(os.path.join(stage, name)) for name, _ in writers}
                if sign is not None:
                    sign(manifest)
                manifest["manifest_sha256"] = manifest_digest(manifest)
                write_staged(lambda p: write_json_atomic(p, manifest), stage, out_dir, MANIFEST_FILE, kept)
        return out_dir


class HeaderMismatch(IntegrityError):
    """A file that must not be used here; ``fields`` names what differs."""

    def __init__(self, message: str, fields: Sequence[str]) -> None:
        super(HeaderMismatch, self).__init__(message)
        self.fields = list(fields)


def header_path(path: str) -> str:
    return path + ".json"


def show(value: Any) -> str:
    """A header value for a one-line message: short, JSON for anything but text."""
    if value is None:
        return "missing"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 24 else text[:12] + "..."


class HeaderedFile(object):
    """One kind of file with a header: its identity fields (in the order messages name them), why
    each matters, the header keys of its checksum and size, and its messages (``str.format``
    templates over path, field, theirs, ours, why, more)."""

    def __init__(self, fields: Sequence[str], why: Dict[str, str], digest_key: str, size_key: str,
                 header_noun: str, missing: str, mismatch: str, damaged: str,
                 error: type = HeaderMismatch, optional: Sequence[str] = ()) -> None:
        self.fields = tuple(fields)
        self.why = why
        self.digest_key = digest_key
        self.size_key = size_key
        self.header_noun = header_noun
        self.missing = missing
        self.mismatch = mismatch
        self.damaged = damaged
        self.error = error
        self.optional = tuple(optional)  # compared only when the caller expects a value

    def differing(self, header: Dict[str, Any], expected: Dict[str, Any]) -> List[str]:
        """Identity fields whose value differs (or is missing), in message order."""
        return [f for f in self.fields
                if not (f in self.optional and expected.get(f) is None) and header.get(f) != expected.get(f)]

    def message(self, path: str, header: Dict[str, Any], expected: Dict[str, Any], fields: Sequence[str]) -> str:
        """One line naming the first differing field, its two values and why it matters."""
        field = fields[0]
        more = "" if len(fields) == 1 else " (also: {})".format(", ".join(fields[1:]))
        return self.mismatch.format(path=path, field=field, theirs=show(header.get(field)),
                                    ours=show(expected.get(field)), why=self.why.get(field, "it must match"),
                                    more=more)

    def write(self, path: str, data: bytes, header: Dict[str, Any]) -> Dict[str, Any]:
        """The file, then its header (with the file's sha256, size and time), each atomically."""
        header = dict(header)
        header[self.digest_key] = sha256_bytes(data)
        header[self.size_key] = len(data)
        header["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_bytes_atomic(path, data)
        write_json_atomic(header_path(path), header)
        return header

    def read_header(self, path: str) -> Dict[str, Any]:
        if not os.path.isfile(path):
            raise JistEdgeError(self.missing.format(path=path))
        return read_json(header_path(path), self.header_noun)

    def load(self, path: str, expected: Dict[str, Any]) -> Tuple[bytes, Dict[str, Any]]:
        """The file's bytes and header, only after every identity field and the checksum matched.

        Header fields first (the useful message), then the checksum over the very bytes returned:
        the file is read once, and one replaced meanwhile is refused too."""
        header = self.read_header(path)
        fields = self.differing(header, expected)
        if fields:
            raise self.error(self.message(path, header, expected, fields), fields)
        with open(path, "rb") as handle:
            data = handle.read()
        if header.get(self.size_key) != len(data) or header.get(self.digest_key) != sha256_bytes(data):
            raise self.error(self.damaged.format(path=path), [self.digest_key])
        return data, header

    def is_current(self, path: str, expected: Dict[str, Any]) -> bool:
        """True when the file matches ``expected`` and its checksum (no message: for "make it again?")."""
        try:
            header = self.read_header(path)
        except JistEdgeError:
            return False
        return not self.differing(header, expected) and os.path.isfile(path) and \
            header.get(self.digest_key) == sha256_file(path)
