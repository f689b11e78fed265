"""Small metadata files (RECORD, package.json, a runtime's release file) read as text, and refused
with a one-line reason when they are not metadata at all."""

from __future__ import annotations

from muslcheck.apps.model import METADATA_MAX_BYTES
from muslcheck.ldso.tree import Resolved, RootFS
from muslcheck.model.report import Skip

MAX_LINE = 65536  # longer lines are not metadata: the file is refused


def decode_metadata(path: str, data: bytes) -> str | Skip:
    """Metadata bytes as text, or why they are not metadata (too large, binary, not UTF-8, huge lines)."""
    if len(data) > METADATA_MAX_BYTES:
        return Skip(path, f"larger than {METADATA_MAX_BYTES} bytes: not a metadata file", unchecked=False)
    if b"\0" in data:
        return Skip(path, "binary content (NUL bytes): not a metadata file", unchecked=False)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return Skip(path, f"not UTF-8 text (byte {e.start})", unchecked=False)
    if any(len(line) > MAX_LINE for line in text.splitlines()):
        return Skip(path, f"a line longer than {MAX_LINE} characters: not a metadata file", unchecked=False)
    return text


def read_metadata(root: RootFS, path: str) -> str | Skip | None:
    """A small metadata file of the tree as text; None when it is absent or its content is not kept."""
    resolved = root.resolve(path)
    if not isinstance(resolved, Resolved) or not resolved.is_file:
        return None
    try:
        data = root.read_head(resolved, METADATA_MAX_BYTES + 1)
    except OSError:
        return None
    return decode_metadata(path, data)
