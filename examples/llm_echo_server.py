"""A rule-based custom-LLM server for Retell: no API key, no model, just the protocol.

It greets the caller, repeats what they say word by word (a stand-in for streaming LLM tokens),
and hangs up when they say goodbye. Run it under aiohttp::

    python examples/llm_echo_server.py --port 8080
    # llm_websocket_url: ws://127.0.0.1:8080/llm-websocket

or under FastAPI with uvicorn (``pip install "aioretell[asgi]" fastapi uvicorn``)::

    uvicorn --app-dir examples llm_echo_fastapi:app --port 8080

and talk to it the way Retell would with ``aioretell llm-test ws://127.0.0.1:8080/llm-websocket``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from aioretell.llm import LLMConfig, LLMServer, LLMSession, ResponseRequired

llm = LLMServer(config=LLMConfig(auto_reconnect=True, call_details=False))

GOODBYES = ("bye", "goodbye", "hang up")


@llm.on_call
async def call(session: LLMSession) -> str:
    # Per-call state lives in session.data; the return value is the agent's first line.
    session.data["turns"] = 0
    return "Hi! I repeat whatever you say. Say goodbye to hang up."


@llm.on_response
async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
    said = request.transcript[-1].content if request.transcript else ""
    if any(word in said.lower() for word in GOODBYES):
        await session.end_call("Goodbye!")
        return
    if not said:
        yield "Are you still there?"
        return
    session.data["turns"] += 1
    yield "You said: "
    for word in said.split():
        # A real server awaits its model here; a newer request cancels this await at once.
        await asyncio.sleep(0.05)
        yield word + " "


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {port}")
    return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8080)
    parser.add_argument("--path", default="/llm-websocket", help="must start with '/'")
    args = parser.parse_args()
    try:
        app = llm.app(args.path)
    except ValueError as exc:
        parser.error(f"--path: {exc}")
    logging.basicConfig(level=logging.INFO)
    try:
        web.run_app(app, host=args.host, port=args.port)
    except OSError as exc:
        print(f"llm_echo_server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
