"""The README's code runs and prints what it says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_the_readme_starts_with_the_two_setup_commands() -> None:
    """First a command running the main job on the built-in default, then the tests."""
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None and README.index(first_block.group(0)) < README.index("**rayk8s**")
    commands = first_block.group(1).strip().splitlines()
    assert len(commands) == 2
    assert commands[0].endswith("rayk8s simulate")
    assert commands[1].endswith("python -m pytest")


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_python_examples_print_what_their_comments_say(block: str) -> None:
    """Each `print(...)  # expected` line prints the expected text."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    for expected in re.findall(r"^print\(.*?\)\s+# (\{.*)$", block, re.M):
        assert expected in out.getvalue()
