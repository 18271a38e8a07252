"""The runtime environment (`.venv-runtime`, from requirements.lock alone: what the operator image
installs, and where the tests and benchmarks run the operator and the CSI plugin from) holds none
of the test side's packages, and the operator's and the plugin's imports load no heavy client: the
`kubernetes` client and the pydantic it pulls in cost each replica about 14 MiB."""

from __future__ import annotations

import json
import subprocess

from cluster import runtime

HEAVY = ("kubernetes", "pydantic", "pydantic_core", "rich", "pytest")
SCRIPT = """
import importlib.util, json, sys
import libinject.runtime.main, libinject.cli.main, libinject.csi.server, libinject.csi.events
heavy = {heavy!r}
print(json.dumps({{
    "installed": [name for name in heavy if importlib.util.find_spec(name) is not None],
    "imported": sorted({{module.split(".")[0] for module in sys.modules}} & set(heavy)),
}}))
"""


def test_the_runtime_environment_holds_no_test_package_and_imports_no_heavy_client() -> None:
    python = runtime.libinject().parent / "python"
    result = subprocess.run(
        [str(python), "-c", SCRIPT.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = json.loads(result.stdout)
    assert found == {"installed": [], "imported": []}
