"""Completion in a real bash: the script installs a completion (complete -p) and answers for
commands, options and forward names (compgen-style, through the script's own function)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BASH = shutil.which("bash")


def complete(line: str, tmp_path: Path, env: dict[str, str]) -> list[str]:
    """What bash completes for ``line`` (the cursor at its end), through the installed function."""
    assert BASH is not None
    script = tmp_path / "complete.sh"
    script.write_text(
        'eval "$(kportforward completion bash)"\n'
        "spec=$(complete -p kportforward) || exit 3\n"
        'echo "SPEC: $spec"\n'
        'fn=$(sed -E "s/.* -F ([^ ]+) .*/\\1/" <<<"$spec")\n'
        f"COMP_LINE={line!r}\n"
        "COMP_POINT=${#COMP_LINE}\n"
        'read -r -a COMP_WORDS <<<"$COMP_LINE"\n'
        '[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")\n'
        "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
        '"$fn" kportforward "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
        'printf "WORD: %s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [BASH, "--noprofile", "--norc", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "SPEC: complete" in done.stdout and " kportforward" in done.stdout
    words = [
        line[len("WORD: ") :] for line in done.stdout.splitlines() if line.startswith("WORD: ")
    ]
    return sorted(word.strip() for word in words if word.strip())


@pytest.mark.skipif(BASH is None, reason="bash not installed")
def test_bash_completes_commands_options_and_forward_names(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "portForwards:\n"
        "  alpha:\n    target: service/a\n    targetPort: 80\n    localPort: 18001\n"
        "  alpine:\n    target: service/b\n    targetPort: 80\n    localPort: 18002\n"
        "  beta:\n    target: service/c\n    targetPort: 80\n    localPort: 18003\n"
    )
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
           "KPORTFORWARD_CONFIG": str(config)}  # fmt: skip
    assert shutil.which("kportforward", path=env["PATH"]), "the console script is not installed"
    commands = complete("kportforward ch", tmp_path, env)
    assert commands == ["check"], commands
    options = complete("kportforward check --of", tmp_path, env)
    assert options == ["--offline"], options
    # Forward names for the commands that take them (start/stop/restart/wait, when present).
    from kportforward.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    takes_names = [c for c in ("stop", "start", "restart", "wait") if c in sub.choices]  # type: ignore[attr-defined]
    for command in takes_names:
        names = complete(f"kportforward {command} alp", tmp_path, env)
        assert names == ["alpha", "alpine"], (command, names)
