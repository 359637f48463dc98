"""The hostile config corpus: every file through the real ``kportforward check`` in a child process.

Each case must end with exit 2 and exactly one line on stderr naming the file (no traceback), within
a hard wall-time limit and an address-space limit (RLIMIT_AS), and without creating or changing any
file. A hang or a memory blow-up is a failure here, not a stuck CI.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

WALL_SECONDS = 20
ADDRESS_SPACE = 1 << 30  # 1 GiB: python + yaml + a 10 MiB document fit well within it

FWD = "portForwards:\n  api:\n    target: service/api\n    targetPort: 80\n    localPort: 8080\n"


def fwd(**override: str) -> str:
    """One forward with some keys replaced (value text as written in YAML)."""
    keys = {"target": "service/api", "targetPort": "80", "localPort": "8080", **override}
    body = "".join(f"    {k}: {v}\n" for k, v in keys.items())
    return f"portForwards:\n  api:\n{body}"


def _merge_bomb(levels: int, width: int) -> str:
    lines = ["x-a0: &a0 {namespace: a, group: g}"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"x-a{i}: &a{i} {{<<: [{refs}], type: web}}")
    lines.append(
        f"portForwards:\n  x:\n    <<: *a{levels - 1}\n    target: pod/x\n    targetPort: 1"
    )
    return "\n".join(lines) + "\n"  # no localPort: the forward fails, quickly


def _merge_chain(depth: int) -> str:
    lines = ["x-m0: &m0 {namespace: a}"]
    lines += [f"x-m{i}: &m{i} {{<<: *m{i - 1}}}" for i in range(1, depth)]
    lines.append(
        f"portForwards:\n  x:\n    <<: *m{depth - 1}\n    target: pod/x\n"
        "    targetPort: 1\n    localPort: 2"
    )
    return "\n".join(lines) + "\n"


def _merge_budget() -> str:
    keys = ", ".join(f"k{i}: 1" for i in range(3000))
    entries = "".join(f"  f{i}: {{<<: *big}}\n" for i in range(100))
    return f"x-big: &big {{{keys}}}\nportForwards:\n{entries}"


_PAIRS = list(zip("abcdefgh", "bcdefghi", strict=True))

TEXT_CASES: dict[str, str | bytes] = {
    # YAML constructors and number forms (issue #18 item 4)
    "hex_underscore": fwd(localPort="0x_"),
    "binary_underscore": fwd(targetPort="0b_"),
    "superscript_two": fwd(targetPort="'²'"),
    "port_5000_digits": fwd(localPort="9" * 5000),
    "quoted_port_5000_digits": fwd(targetPort=f"'{'9' * 5000}'"),
    "port_20_digits": fwd(localPort="99999999999999999999"),
    "duration_400_digits": FWD + f"monitoringInterval: {'9' * 400}\n",
    "duration_400_digits_unit": FWD + f"monitoringInterval: {'9' * 400}s\n",
    "int_tag_word": fwd(localPort="!!int abc"),
    "int_tag_empty": fwd(localPort="!!int ''"),
    "bool_tag_maybe": fwd(disabled="!!bool maybe"),
    "float_tag_word": fwd(localPort="!!float abc"),
    "float_tag_duration": FWD + "monitoringInterval: !!float abc\n",
    "octal_port": fwd(localPort="017"),
    "negative_octal_port": fwd(localPort="-017"),
    "sexagesimal_port": fwd(targetPort="7:38:20"),
    "sexagesimal_local_port": fwd(localPort="1:30"),
    "sexagesimal_duration": FWD + "monitoringInterval: 1:30\n",
    "infinite_port": fwd(localPort=".inf"),
    "nan_port": fwd(localPort=".nan"),
    "nan_duration": FWD + "monitoringInterval: .nan\n",
    "infinite_duration": FWD + "monitoringInterval: .inf\n",
    "float_overflow_duration": FWD + "monitoringInterval: 1e400\n",
    "negative_duration": FWD + "monitoringInterval: -5s\n",
    "zero_duration": FWD + "monitoringInterval: 0\n",
    "zero_duration_unit": FWD + "uiOptions:\n  refreshRate: 0s\n",
    "beyond_go_duration": FWD + "monitoringInterval: 300000000h\n",
    "duration_words": FWD + "monitoringInterval: 5 parsecs\n",
    "duration_binary_tag": FWD + "monitoringInterval: !!binary aGVsbG8=\n",
    "timestamp_port": fwd(localPort="2001-12-14"),
    "port_out_of_range": fwd(localPort="65536"),
    "port_name_uppercase": fwd(targetPort="Http"),
    # values inside one forward
    "target_name_too_long": fwd(target="svc/" + "a" * 300),
    "target_unknown_kind": fwd(target="bogus/x"),
    "target_control_char": fwd(target='"svc/a\\a"'),
    "namespace_uppercase": fwd(namespace="UPPER"),
    "namespace_64": fwd(namespace="a" * 64),
    "address_hostname": fwd(address="example.com"),
    "disabled_string": fwd(disabled="'yes'"),
    "kubeconfig_list": fwd(kubeconfig="[a, b]"),
    "entry_duplicate_key": FWD + "    localPort: 8081\n",
    "merge_scalar": fwd(**{"<<": "5"}),
    # settings and structure
    "config_url_http": FWD + "configUrl: http://example.com/c.yaml\n",
    "config_url_ftp": FWD + "configUrl: ftp://example.com/c.yaml\n",
    "config_url_list": FWD + "configUrl: [a]\n",
    "top_level_list": "- a\n- b\n",
    "top_level_scalar": "hello\n",
    "port_forwards_scalar": "portForwards: 5\n",
    "port_forwards_list": "portForwards: [a]\n",
    "ui_options_list": FWD + "uiOptions: [1]\n",
    "mapping_as_key": "? {a: 1}\n: 2\n",
    "forward_name_newline": 'portForwards:\n  "a\\nb": {target: pod/a, targetPort: 1}\n',
    "forward_name_300": f"portForwards:\n  {'n' * 300}: {{target: pod/a, targetPort: 1}}\n",
    "forward_name_empty": 'portForwards:\n  "": {target: pod/a, targetPort: 1, localPort: 2}\n',
    "duplicate_forward": FWD + "  api: {target: pod/a, targetPort: 1, localPort: 2}\n",
    # merges and aliases (issue #18 item 2)
    "merge_bomb_9x9": _merge_bomb(9, 9),
    "merge_bomb_30x30": _merge_bomb(30, 30),
    "merge_chain_40": _merge_chain(40),
    "merge_budget": _merge_budget(),
    "alias_list_bomb": "x-a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
    + "".join(f"x-{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in _PAIRS)
    + "portForwards: *i\n",
    "undefined_alias": "portForwards: *nowhere\n",
    # syntax, encoding, size
    "deep_flow_lists": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep_flow_maps": "a: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "multiple_documents": FWD + "---\n" + FWD,
    "tab_indent": "portForwards:\n\tapi: {}\n",
    "unclosed_quote": 'portForwards:\n  api: {target: "svc/a}\n',
    "unclosed_flow": "portForwards: {api: {target: svc/a\n",
    "nul_bytes": b"portForwards:\x00\x00\n",
    "invalid_utf8": b"portForwards:\n  \xff\xfe\xfd: 1\n",
    "utf16_no_bom": "portForwards: {}\n".encode("utf-16-le"),
    "control_character": "portForwards: {}\n\x01\n",
}


def _special(tmp: Path) -> dict[str, Callable[[], Path]]:
    def huge() -> Path:
        path = tmp / "huge.yaml"
        with open(path, "wb") as fh:
            fh.truncate(10 * 1024 * 1024 + 1)
        return path

    def directory() -> Path:
        path = tmp / "dir.yaml"
        path.mkdir()
        return path

    def fifo() -> Path:
        path = tmp / "fifo.yaml"
        os.mkfifo(path)
        return path

    def dev_zero_link() -> Path:
        path = tmp / "zero.yaml"
        path.symlink_to("/dev/zero")
        return path

    def symlink_loop() -> Path:
        path = tmp / "loop.yaml"
        path.symlink_to(tmp / "loop2.yaml")
        (tmp / "loop2.yaml").symlink_to(path)
        return path

    return {
        "huge_file": huge,
        "directory": directory,
        "fifo": fifo,
        "dev_zero_symlink": dev_zero_link,
        "symlink_loop": symlink_loop,
    }


SPECIAL = ["huge_file", "directory", "fifo", "dev_zero_symlink", "symlink_loop"]


def test_the_corpus_is_big_enough() -> None:
    assert len(TEXT_CASES) + len(SPECIAL) >= 60


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _tree(*roots: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for name in [*files, *dirs]:
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                out[full] = (st.st_mtime_ns, st.st_size)
    return out


def run_check(path: Path) -> subprocess.CompletedProcess[str]:
    """``kportforward check --config PATH`` under the wall-time and memory limits."""
    return subprocess.run(
        [sys.executable, "-m", "kportforward", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=WALL_SECONDS,
        preexec_fn=_limit,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )


def _assert_refused(result: subprocess.CompletedProcess[str], name: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kportforward: error: "), lines[0]
    assert name in lines[0], lines[0]
    assert len(lines[0]) < 1000  # huge values are shortened, never echoed whole
    assert result.stdout == ""


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_hostile_text(case: str, tmp_path: Path, hermetic_env: Path) -> None:
    content = TEXT_CASES[case]
    path = tmp_path / f"{case}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    before = _tree(hermetic_env, tmp_path)
    result = run_check(path)
    _assert_refused(result, f"{case}.yaml")
    assert _tree(hermetic_env, tmp_path) == before


@pytest.mark.parametrize("case", SPECIAL)
def test_hostile_file(case: str, tmp_path: Path, hermetic_env: Path) -> None:
    path = _special(tmp_path)[case]()
    before = _tree(hermetic_env, tmp_path)
    result = run_check(path)
    _assert_refused(result, path.name)
    assert _tree(hermetic_env, tmp_path) == before
