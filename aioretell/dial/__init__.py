"""``aioretell dial``: a crash-safe outbound campaign runner.

A CSV of leads in, every lead called once at the pace the account allows, a journal (SQLite)
that makes a crash or Ctrl-C safe to resume, and results out. The modules, one job each:
``leads`` (CSV loading and validation), ``journal`` (the journal interface and state machine),
``journal_sqlite`` (its SQLite file), ``reconcile`` (metadata and lookups), ``capacity``
(get-concurrency gating), ``watch`` (following calls to their end by polling), ``listen``
(following them from webhooks, ``--listen``), ``runner`` (the dispatch loop), ``campaign``
(one run and the tasks it owns), ``errors`` (what stops a run), ``emulated`` (the in-process
emulator and its record file), ``report`` (progress, summary, NDJSON), ``cli``.
"""
