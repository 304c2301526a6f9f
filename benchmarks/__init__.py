"""Benchmarks of aioretell against the floor of raw aiohttp + msgspec and the official SDK.

Run ``python -m benchmarks`` from the repository root; see :mod:`benchmarks.run`.
"""
