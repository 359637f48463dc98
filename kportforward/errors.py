"""One exception family for everything kportforward reports to a person.

Every error carries a one-line ``message`` (what is wrong, naming the file, line or key) and a
``hint`` (what to do). The CLI prints ``str(error)`` on one line and exits with ``exit_code``.
Foreign exceptions are translated into the most specific class here, at the boundary.
"""

from __future__ import annotations


class KPortForwardError(Exception):
    """Base class: a problem kportforward explains in one line."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = self.message if not self.hint else f"{self.message} — {self.hint}"
        # One line, always: the CLI prints exactly this.
        return " ".join(text.split())


class BadInputError(KPortForwardError):
    """Input the user can fix: a config, an argument, a path, a missing program (exit 2)."""

    exit_code = 2


class ConfigError(BadInputError):
    """The config file is unreadable, not YAML, or fails validation."""

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        where = ""
        if path:
            where = path if line is None else f"{path}:{line}"
        if key:
            where = f"{where}: {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message, hint)
        self.path = path
        self.line = line
        self.key = key


class ArgumentError(BadInputError):
    """A command-line argument is malformed or out of range."""


class KubectlNotFoundError(BadInputError):
    """The kubectl executable is missing or cannot be run."""


class KubeconfigError(BadInputError):
    """A kubeconfig is missing, corrupt, or names a context/cluster/user that does not exist."""


class KubeContextError(KubeconfigError):
    """The kube context requested does not exist or cannot be used."""


class OutputPathError(BadInputError):
    """A file or directory we were asked to write to cannot be written."""


class ClusterUnreachableError(KPortForwardError):
    """The Kubernetes API server cannot be reached or rejected our credentials (exit 1)."""


class PortError(KPortForwardError):
    """A local port cannot be used (in use, privileged, address not available)."""
