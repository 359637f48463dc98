"""``kportforward init``: write a commented starter config at the user path; never overwrite.

The file ends with ``portForwards:`` in block style so that ``kportforward add`` (and the
dashboard's ``a``) can append entries to it without rewriting a byte.
"""

from __future__ import annotations

import argparse
import os
import sys

from kportforward.errors import ConfigError

STARTER = """\
# kportforward config (created by `kportforward init`).
#
# Your forwards, merged over the embedded defaults; `kportforward --config FILE` merges another
# file over this one. The dashboard reloads this file when you save it. Check it with
# `kportforward check`. The schema is the Go kportforward's, plus context, kubeconfig,
# address and group.

# How often each tunnel is probed ("500ms", "2s", "1m").
monitoringInterval: 1s

uiOptions:
  refreshRate: 250ms
  theme: dark                    # dark | light | any Textual theme

# One entry per forward. `kportforward add --namespace NS` (or `a` in the dashboard) lists a
# namespace's services and appends the ones you pick below. By hand, for example:
#
#  api:
#    target: service/api          # service/, deployment/, statefulset/, replicaset/, pod/
#    targetPort: 80               # a number, or a named port
#    localPort: 8080
#    namespace: default           # optional: the context's namespace otherwise
#    type: rest                   # rest | rpc | web | other
#    swaggerPath: openapi.json    # optional (rest): Swagger UI with --swaggerui or w
#    apiPath: api                 # optional (rest)
#    context: staging             # optional: kubectl --context (default: the current one)
#    group: payments              # optional: g stops/starts a group together
#
# Keep portForwards the last key of this file so new entries can be appended to it.
portForwards:
"""


def write_starter(path: str) -> None:
    """Create ``path`` with the starter config; ConfigError (exit 2) if it already exists."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ConfigError(
            "a config file is already there; init never overwrites one",
            "edit it, check it with 'kportforward check', or remove it first",
            path=path,
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot create: {exc.strerror}", path=path) from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(STARTER)


def main(args: argparse.Namespace) -> int:
    """Write the starter config at the user path (``$KPORTFORWARD_CONFIG`` or the XDG one)."""
    from kportforward.core.config import user_config_path

    path = str(user_config_path())
    write_starter(path)
    print(f"Wrote {path}")
    print("Next: kportforward add --namespace NS   (pick services to forward)")
    print("      kportforward check               (validate), then kportforward")
    sys.stdout.flush()
    return 0
