"""Without the generated gRPC stubs the CSI tests fail, naming how to make the stubs, instead of
being skipped (a skipped suite proves nothing and reads as green)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parents[1]

# Hides the stubs as if they were never generated: `import` of them raises ImportError.
HIDDEN = "import sys; sys.modules['libinject.csi.generated'] = None; import csi.plugin"


def test_missing_stubs_fail_with_the_command_that_makes_them() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HIDDEN], cwd=TESTS, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "ImportError: the CSI gRPC stubs are missing" in done.stderr
    assert "python -m libinject.csi.codegen" in done.stderr
