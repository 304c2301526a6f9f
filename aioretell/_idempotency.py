"""The idempotency keys the client makes for a create: unique, and cheap to make.

A key is ``aioretell_``, 16 URL-safe characters drawn once per process from the OS (96 random
bits), then a counter in 8 or more hex digits. Two keys of one process differ by the counter,
keys of two processes by the random part: no key repeats, where a fresh random key per call
(a system call each) would only make a repeat unlikely. A forked child draws its own random
part before it makes a key, so parent and child never share a sequence.

The key is no secret (only the account's API key can use it); that the next one of a process
can be guessed from the last does no harm.
"""

from __future__ import annotations

import itertools
import os
import secrets

_salt = ""
_counter = itertools.count()


def _reseed() -> None:
    global _salt, _counter
    _salt = secrets.token_urlsafe(12)
    _counter = itertools.count()


_reseed()
if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_reseed)


def new_idempotency_key() -> str:
    """A key no other call of any process has: ``aioretell_`` then at least 24 URL-safe chars."""
    return f"aioretell_{_salt}{next(_counter):08x}"
