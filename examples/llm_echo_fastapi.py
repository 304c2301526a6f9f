"""The echo server of llm_echo_server.py, served by FastAPI::

uvicorn --app-dir examples llm_echo_fastapi:app --port 8080
# llm_websocket_url: ws://127.0.0.1:8080/llm-websocket
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from llm_echo_server import llm

from aioretell.llm.asgi import add_routes


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await llm.shutdown()  # let open calls finish (or close them) before the process exits


app = FastAPI(lifespan=lifespan)
add_routes(app, llm, path="/llm-websocket")
