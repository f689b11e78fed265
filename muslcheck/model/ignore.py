"""Accepted findings: ``.muslcheck.toml``, in the spirit of ``.trivyignore.yaml`` and ``.grype.yaml``.

```toml
[[ignore]]
rule = "latent-symbol"            # a rule name or id (muslcheck.model.rules); optional
symbol = "__fprintf_chk"          # the finding's subject: a symbol, soname or relocation; optional
path = "/opt/app/lib/*.so"        # a glob on the scanned file's path; optional (every file)
reason = "never called on our code path"   # required
expires = 2027-01-31              # optional; after that day the entry stops ignoring, and says so
```
Each entry needs a reason and at least one of rule or symbol.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
import stat
import tomllib
from dataclasses import dataclass

from muslcheck.model.errors import UsageError
from muslcheck.model.rules import RULES

MAX_IGNORE_BYTES = 4 << 20  # an ignore file is a few entries; a larger one is not read
_KEYS = frozenset({"rule", "symbol", "path", "reason", "expires"})
_RULE_NAMES = {r.id: r.name for r in RULES.values()} | {r.name: r.name for r in RULES.values()}


@dataclass(frozen=True)
class IgnoreEntry:
    line: int
    rule: str | None  # a rule name
    symbol: str | None
    path: str | None
    reason: str
    expires: dt.date | None


@dataclass(frozen=True)
class Ignores:
    source: str
    entries: tuple[IgnoreEntry, ...]
    today: dt.date

    @property
    def expired(self) -> tuple[IgnoreEntry, ...]:
        return tuple(e for e in self.entries if e.expires is not None and e.expires < self.today)

    def match(self, rule: str, subject: str, path: str) -> str | None:
        """The reason of the first live entry that covers this finding, else None."""
        for e in self.entries:
            if e.expires is not None and e.expires < self.today:
                continue
            if e.rule is not None and e.rule != rule:
                continue
            if e.symbol is not None and e.symbol != subject:
                continue
            if e.path is not None and not fnmatch.fnmatchcase(path, e.path):
                continue
            return e.reason
        return None

    def expiry_notes(self) -> tuple[str, ...]:
        return tuple(
            f"{self.source}:{e.line}: ignore entry expired on {e.expires} and no longer applies ({e.reason})"
            for e in self.expired
        )


NO_IGNORES = Ignores("", (), dt.date.min)


def load_ignores(path: str | os.PathLike[str], today: dt.date | None = None) -> Ignores:
    """Parse an ignore file; a malformed one is a UsageError naming the line and the key."""
    source = str(path)
    text = _read_regular_file(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{source}: not valid TOML: {e}") from e
    unknown_top = set(data) - {"ignore"}
    if unknown_top:
        raise UsageError(f"{source}: unknown key {sorted(unknown_top)[0]!r} (only [[ignore]] tables)")
    raw = data.get("ignore", [])
    if not isinstance(raw, list):
        raise UsageError(f"{source}: 'ignore' must be an array of tables ([[ignore]])")
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if re.match(r"\s*\[\[\s*ignore\s*\]\]", line)]
    entries = tuple(_entry(source, lines[i] if i < len(lines) else 0, item) for i, item in enumerate(raw))
    return Ignores(source, entries, today or dt.date.today())


def _read_regular_file(source: str) -> str:
    """The ignore file's text. Its type is checked before it is opened, and the open never blocks, so a FIFO, a
    device or a socket given as the ignore file is a one-line ``UsageError``, never a hang or a device read."""
    try:
        kind = _special_kind(os.stat(source).st_mode)
        if kind is not None:
            raise UsageError(f"{source}: {kind}, not a regular file: refused as an ignore file")
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as f:
            kind = _special_kind(os.fstat(f.fileno()).st_mode)  # swapped after the stat: still refused
            if kind is not None:
                raise UsageError(f"{source}: {kind}, not a regular file: refused as an ignore file")
            data = f.read(MAX_IGNORE_BYTES + 1)
    except OSError as e:
        raise UsageError(f"{source}: cannot read ignore file: {e.strerror or e}") from e
    if len(data) > MAX_IGNORE_BYTES:
        raise UsageError(f"{source}: larger than {MAX_IGNORE_BYTES >> 20} MiB: not an ignore file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{source}: not UTF-8 ({e.reason} at byte {e.start})") from e


def _special_kind(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO", ...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def _entry(source: str, line: int, item: object) -> IgnoreEntry:
    where = f"{source}:{line}"
    if not isinstance(item, dict):
        raise UsageError(f"{where}: an ignore entry must be a table")
    for key in item:
        if key not in _KEYS:
            raise UsageError(f"{where}: unknown key {key!r}; known: {', '.join(sorted(_KEYS))}")
    for key in ("rule", "symbol", "path", "reason"):
        if key in item and not isinstance(item[key], str):
            raise UsageError(f"{where}: key {key!r} must be a string")
    if not item.get("reason"):
        raise UsageError(f"{where}: key 'reason' is required")
    if "rule" not in item and "symbol" not in item:
        raise UsageError(f"{where}: give key 'rule' or key 'symbol' (or both)")
    rule = item.get("rule")
    if rule is not None and rule not in _RULE_NAMES:
        raise UsageError(f"{where}: key 'rule': unknown rule {rule!r}; known: {', '.join(sorted(RULES))}")
    expires = item.get("expires")
    if expires is not None and (not isinstance(expires, dt.date) or isinstance(expires, dt.datetime)):
        raise UsageError(f"{where}: key 'expires' must be a date such as 2027-01-31")
    return IgnoreEntry(line, _RULE_NAMES[rule] if rule else None, item.get("symbol"), item.get("path"),
                       item["reason"], expires)
