"""``status``, ``wait`` and ``start/stop/restart`` stay light: a whole command, in a subprocess,
imports neither textual, kubernetes, asyncio nor yaml (they answer in well under 150 ms)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from kportforward import cli
code = cli.main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"textual", "kubernetes", "asyncio",
                                                         "yaml", "psutil"})
print(json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--json"],
        ["status"],
        ["wait", "--timeout", "0s"],
        ["restart", "api"],
        ["stop", "--instance"],
    ],
)
def test_client_commands_import_nothing_heavy(argv: list[str], tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "--config", str(tmp_path / "c.yaml"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 3  # no instance runs on this config
    assert result["heavy"] == []
