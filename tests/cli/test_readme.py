"""The README's worked example is the real output of `libinject explain`."""

from __future__ import annotations

from pathlib import Path

import pytest

from libinject.cli.main import main

ROOT = Path(__file__).parents[2]


def test_readme_explain_output_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- explain-output -->")[1].split("<!-- /explain-output -->")[0]
    shown = block.strip().removeprefix("```text").removesuffix("```").strip()
    args = ["explain", "-f", str(ROOT / "examples/workloads/shop.yaml"),
            "--policies", str(ROOT / "examples/policies")]  # fmt: skip
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == shown
