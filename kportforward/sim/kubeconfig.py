"""The simulator's own kubeconfig and, for --tls, a throwaway self-signed certificate."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import yaml


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """Create a self-signed certificate for 127.0.0.1 with openssl; returns (cert, key) paths."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the simulator's --tls needs the openssl command to make a certificate")
    cert, key = directory / "sim-cert.pem", directory / "sim-key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "7", "-subj", "/CN=kportforward-sim",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    os.chmod(key, 0o600)
    return cert, key


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    context: str,
    token: str | None = None,
    ca_cert: Path | None = None,
    namespace: str = "default",
) -> Path:
    """Write a kubeconfig with one cluster, one user and one context (current), mode 0600."""
    cluster: dict[str, object] = {"server": server}
    if ca_cert is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_cert.read_bytes()).decode()
    user: dict[str, object] = {"token": token} if token else {}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": user}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    return path
