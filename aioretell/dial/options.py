"""``aioretell dial``: the checks that span options, and the server a run dials.

Each option's own value is checked when it is parsed (:mod:`aioretell._cli_args`); what is
checked here needs several options or the file system. All of it runs before the journal is
opened or a request is sent, so a mistake costs nothing but one line and exit status 2.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .._cli_args import UsageError
from .._client import DEFAULT_BASE_URL
from .emulated import IN_PROCESS  # the journal's target for the in-process emulator
from .leads import normalize_e164
from .listen import ListenAddressError, parse_listen
from .shared_cli import is_postgres


@dataclass(frozen=True, slots=True)
class Server:
    """Where the calls go: ``key`` ``None`` means an emulator started in-process."""

    key: str | None
    base_url: str | None

    @property
    def target(self) -> str:
        """What the journal records and the output names: the URL, or the in-process emulator."""
        return IN_PROCESS if self.base_url is None else self.base_url

    @property
    def in_process(self) -> bool:
        return self.key is None


def default_journal(args: argparse.Namespace) -> Path:
    """The SQLite journal's file (for a postgresql:// journal, only a name for messages)."""
    return Path(args.journal) if args.journal else Path(args.leads).with_suffix(".journal.db")


def check(args: argparse.Namespace) -> None:
    """Raise :class:`UsageError` for options that cannot work together or on this machine."""
    if normalize_e164(args.from_number) != args.from_number:
        raise UsageError(f"--from-number {args.from_number!r} is not E.164, e.g. +14155550100")
    if args.listen is not None:
        try:
            parse_listen(args.listen)
        except ListenAddressError as exc:
            raise UsageError(str(exc)) from None
    leads = _resolved(args.leads)
    # The default journal lies beside the CSV: a CSV that cannot be read says so itself.
    if args.journal is not None and not is_postgres(args.journal):
        _check_writable("--journal", Path(args.journal), taken={leads: "the leads file"})
    if args.out is not None:
        taken = {leads: "the leads file"}
        if not is_postgres(args.journal):
            taken[_resolved(default_journal(args))] = "the journal"
        _check_writable("--out", args.out, taken=taken)


def choose_server(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> Server:
    """The key and URL to dial with: ``--api-key``/``--base-url`` first, then the environment.

    No key at all means the in-process emulator; a URL without a key is refused rather than
    silently ignored. An empty variable counts as unset.
    """
    key = args.api_key or environ.get("RETELL_API_KEY") or None
    if key is None:
        if args.base_url is not None:
            raise UsageError("--base-url needs --api-key or $RETELL_API_KEY")
        if environ.get("RETELL_BASE_URL"):
            raise UsageError(
                "$RETELL_BASE_URL is set but no key is: pass --api-key or set $RETELL_API_KEY "
                "(or unset RETELL_BASE_URL to dial the in-process emulator)"
            )
        return Server(None, None)
    url = args.base_url or environ.get("RETELL_BASE_URL") or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"$RETELL_BASE_URL must start with http:// or https://, got {url!r}")
    return Server(key, url.rstrip("/"))


def _resolved(path: Path) -> Path:
    return path.expanduser().resolve()


def _check_writable(option: str, path: Path, *, taken: Mapping[Path, str]) -> None:
    """``path`` can be created or replaced as a file, and is none of the ``taken`` ones."""
    resolved = _resolved(path)
    if resolved in taken:
        raise UsageError(f"{option} {path} is {taken[resolved]}; choose another file")
    if path.is_dir():
        raise UsageError(f"{option} {path} is a directory; give a file name")
    parent = resolved.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the directory {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path} is not writable")
