"""Every ```python block of README.md runs as written, against the emulator.

Each block is written to a file and run in a fresh interpreter (``-W error``) with
``RETELL_BASE_URL`` pointing at an emulator on loopback and ``RETELL_API_KEY`` set, as a reader
would run it after ``export``-ing both. A block passes when it exits 0 and writes nothing to
stderr (no traceback, no "Unclosed client session", no "Task exception was never retrieved").
A block whose first line is ``# not run: <reason>`` is only shown; the README says so.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aioretell.emulator import Emulator, EmulatorConfig
from tests.services import REDIS_URL, require

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
API_KEY = "key_readme_snippets"
OPT_OUT = "# not run:"
#: A guard against a snippet that hangs (a server left running), not a performance bound.
HANG_GUARD_S = 300.0

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>\S*)[ \t]*$")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    code: str


def python_blocks(markdown: str) -> list[Block]:
    """The ```python blocks, dedented (a block may sit inside a list item)."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and _FENCE.match(lines[end]) is None:
            end += 1
        if end == len(lines):
            raise AssertionError(f"README.md:{i + 1}: code fence never closed")
        if opening["lang"] == "python":
            blocks.append(Block(i + 1, textwrap.dedent("\n".join(lines[i + 1 : end])) + "\n"))
        i = end + 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


async def run_snippet(code: str, workdir: Path, base_url: str) -> Run:
    """Run ``code`` as a script, the way a reader would: a file, a fresh interpreter."""
    script = workdir / "snippet.py"
    script.write_text(code, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "RETELL_API_KEY": API_KEY,
        "RETELL_BASE_URL": base_url,
    }
    # Run under another name than __main__: a server snippet's `if __name__ == "__main__":`
    # holds only its serve-forever call (checked by test_main_guards_only_start_a_server).
    runner = f"import runpy; runpy.run_path({str(script)!r}, run_name='readme_snippet')"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-c",
        runner,
        cwd=workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD_S)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"snippet still running after {HANG_GUARD_S} s") from None
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    config = EmulatorConfig(api_key=API_KEY, call_duration_s=1.0, ring_duration_s=0.1)
    async with Emulator(config) as emu:
        yield emu


def test_readme_has_python_blocks() -> None:
    # Guards the extraction itself: the intro's example and the paging example are found.
    assert len(BLOCKS) >= 5
    assert any("client.call.create_phone_call" in b.code for b in BLOCKS)
    assert any(b.code.startswith("import asyncio") and "list_all" in b.code for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
async def test_readme_block_runs(block: Block, emulator: Emulator, tmp_path: Path) -> None:
    first = block.code.lstrip().splitlines()[0] if block.code.strip() else ""
    if first.startswith(OPT_OUT):
        reason = first[len(OPT_OUT) :].strip()
        assert reason, f"README.md:{block.line}: `{OPT_OUT}` needs a reason"
        pytest.skip(f"README.md:{block.line} is marked not run: {reason}")
    if "redis://" in block.code:  # the scaling-out snippets need a Redis, as their tests do
        require("Redis", REDIS_URL, 6379, "AIORETELL_TEST_REDIS")
    result = await run_snippet(block.code, tmp_path, emulator.base_url)
    where = f"README.md:{block.line}"
    assert result.returncode == 0, f"{where} exited {result.returncode}:\n{result.stderr}"
    assert result.stderr == "", f"{where} wrote to stderr:\n{result.stderr}"


_MAIN_GUARD = 'if __name__ == "__main__":'
_SERVE_CALLS = ("web.run_app(", "uvicorn.run(")


def main_guard_problems(code: str) -> list[str]:
    """What a ``__main__`` guard holds besides one serve-forever call (which the test skips)."""
    lines = code.splitlines()
    problems: list[str] = []
    for i, line in enumerate(lines):
        if line.strip() != _MAIN_GUARD:
            continue
        body = [row.strip() for row in lines[i + 1 :] if row.strip()]
        if len(body) != 1 or not body[0].startswith(_SERVE_CALLS):
            problems.append(f"the guard at line {i + 1} holds {body!r}")
    return problems


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_main_guards_only_start_a_server(block: Block) -> None:
    # Otherwise a snippet could hide untested code behind the guard the test leaves out.
    assert main_guard_problems(block.code) == []


def test_the_guard_rule_can_fail() -> None:
    assert main_guard_problems('x = 1\nif __name__ == "__main__":\n    web.run_app(app)\n') == []
    assert main_guard_problems('if __name__ == "__main__":\n    asyncio.run(main())\n')
    assert main_guard_problems('if __name__ == "__main__":\n    web.run_app(a)\n    b()\n')


# ---------------------------------------------------------------------------------------------
# The harness itself: it finds blocks where a reader sees them, and it can fail


def test_blocks_are_found_indented_and_other_languages_are_not() -> None:
    markdown = (
        "text\n```python\nx = 1\n```\n- item\n\n  ```python\n  y = 2\n  ```\n"
        "```bash\nls\n```\n```\nplain\n```\n"
    )
    assert python_blocks(markdown) == [Block(2, "x = 1\n"), Block(7, "y = 2\n")]
    with pytest.raises(AssertionError, match="never closed"):
        python_blocks("```python\nx = 1\n")


async def test_a_failing_snippet_fails(emulator: Emulator, tmp_path: Path) -> None:
    broken = await run_snippet("import asyncio\nundefined_name\n", tmp_path, emulator.base_url)
    assert broken.returncode != 0 and "NameError" in broken.stderr
    leaky = await run_snippet(
        "import aiohttp, asyncio\n"
        "async def main():\n"
        "    aiohttp.ClientSession()\n"  # never closed: a ResourceWarning on stderr
        "asyncio.run(main())\n",
        tmp_path,
        emulator.base_url,
    )
    assert leaky.stderr != ""
    ok = await run_snippet(
        "import asyncio\n"
        "from aioretell import AsyncRetell\n"
        "async def main():\n"
        "    async with AsyncRetell() as client:\n"
        "        print((await client.concurrency.retrieve()).concurrency_limit)\n"
        "asyncio.run(main())\n",
        tmp_path,
        emulator.base_url,
    )
    assert (ok.returncode, ok.stderr, ok.stdout.strip()) == (0, "", "20")
