"""Immutable records shared by every layer: what to forward, and how it is going."""

from __future__ import annotations

from dataclasses import dataclass, field

from kportforward.core.states import ForwardState

FORWARD_TYPES = ("rest", "rpc", "web", "other")
POD_KINDS = ("pod", "pods", "po")
"""kubectl's spellings of a pod target."""
DEFAULT_ADDRESS = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ForwardSpec:
    """One configured forward, validated. Field names are snake_case; YAML keys are camelCase."""

    name: str
    target: str
    """``KIND/NAME`` as kubectl takes it, e.g. ``service/api``."""
    target_port: int | str
    """Remote port: a number, or a named port."""
    local_port: int
    namespace: str | None = None
    """None: kubectl uses the context's namespace."""
    type: str = "other"
    swagger_path: str | None = None
    api_path: str | None = None
    context: str | None = None
    """kubectl ``--context``; None follows the kubeconfig's current context."""
    kubeconfig: str | None = None
    address: str = DEFAULT_ADDRESS
    """kubectl ``--address``; loopback unless configured explicitly."""
    group: str | None = None
    front_door: bool | None = None
    """False: kubectl listens on the user's port itself; None: the global ``frontDoor``."""
    hold_timeout: float | None = None
    """How long the front door holds a new connection while the tunnel restarts; None: global."""

    @property
    def kind(self) -> str:
        """The target's kind as written (``service``, ``svc``, ``pod`` …)."""
        return self.target.split("/", 1)[0]

    @property
    def targets_pod(self) -> bool:
        """True when the target is one pod (``pod/NAME``, ``po/NAME``, or a bare ``NAME``, which
        kubectl reads as a pod), not a service or workload that picks one."""
        return "/" not in self.target or self.kind.lower() in POD_KINDS

    @property
    def url(self) -> str:
        """How a person reaches the forward: ``http://localhost:PORT`` for web/rest."""
        return self.url_for(self.local_port)

    def url_for(self, port: int) -> str:
        """The URL for this forward when it listens on ``port`` (which may have been moved)."""
        host = "localhost" if self.address in ("127.0.0.1", "localhost", "::1") else self.address
        if self.type in ("web", "rest"):
            return f"http://{host}:{port}"
        return f"{host}:{port}"

    def kubectl_fields(self) -> tuple[object, ...]:
        """What kubectl's argv and the local port depend on: a change needs a new kubectl."""
        return (
            self.target, self.target_port, self.local_port, self.namespace, self.context,
            self.kubeconfig, self.address, self.front_door,
        )  # fmt: skip

    @property
    def exposed(self) -> bool:
        """True when the forward listens on something other than loopback."""
        return self.address not in (
            "127.0.0.1",
            "localhost",
            "::1",
        ) and not self.address.startswith("127.")


@dataclass(frozen=True, slots=True)
class Settings:
    """Global settings from the config (``monitoringInterval``, ``uiOptions``)."""

    monitoring_interval: float = 1.0
    """Seconds between probes through each tunnel."""
    front_door: bool = True
    """kportforward owns each local port and relays to kubectl (``frontDoor: false``: kubectl
    listens on it itself, as before)."""
    hold_timeout: float = 10.0
    """How long a new connection waits at the front door while its tunnel restarts."""
    keep_alive: float = 60.0
    """Every tunnel carries a stream (a probe) at least this often, so a kubelet's or a load
    balancer's idle timeout never cuts a tunnel the user is not using right now."""
    refresh_rate: float = 0.25
    """Seconds between refreshes of time-based cells in the dashboard."""
    theme: str = "dark"


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """Accepted in a config but probably not meant: an unknown key, a shared port."""

    message: str
    path: str | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.path or ""
        if self.path and self.line is not None:
            where = f"{self.path}:{self.line}"
        if self.key:
            where = f"{where}: {self.key}" if where else self.key
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True, slots=True)
class ForwardProblem:
    """A configured forward that cannot run as written; the others still start.

    The supervisor shows it as a Failed row with this message; ``check`` reports it as an error.
    """

    name: str
    message: str
    """One line naming the file, line and key, and what to do."""


@dataclass(frozen=True, slots=True)
class Config:
    """The merged, validated configuration the program runs."""

    forwards: tuple[ForwardSpec, ...] = ()
    """Enabled forwards, sorted by name."""
    settings: Settings = field(default_factory=Settings)
    sources: tuple[str, ...] = ()
    """The files merged, in order (``<embedded>`` for the defaults)."""
    warnings: tuple[ConfigWarning, ...] = ()
    rejected: tuple[ForwardProblem, ...] = ()
    """Forwards that failed validation alone (a bad value in that forward only), sorted by name."""

    def forward(self, name: str) -> ForwardSpec:
        """The forward called ``name`` (KeyError if there is none)."""
        for spec in self.forwards:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of one forward, with its human reason."""

    ts: float
    """Wall-clock time (``time.time()``)."""
    state: ForwardState
    reason: str


@dataclass(frozen=True, slots=True)
class Traffic:
    """A door's counters at one moment (immutable; ``ForwardStatus`` carries it)."""

    opened: int = 0
    """Connections relayed to a tunnel since the door opened."""
    active: int = 0
    """Relayed connections open now."""
    waiting: int = 0
    """Connections accepted and held, waiting for the tunnel."""
    failed: int = 0
    """Connections closed without reaching a tunnel (hold timeout, forward stopped)."""
    ended_with_tunnel: int = 0
    """Relayed connections cut because their kubectl went away."""
    bytes_in: int = 0
    """Bytes from clients into the tunnel."""
    bytes_out: int = 0
    """Bytes from the tunnel to clients."""
    rate_in: float = 0.0
    """Bytes/s into the tunnel over the last complete second."""
    rate_out: float = 0.0
    """Bytes/s out of the tunnel over the last complete second."""

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict (``run --json`` traffic events, ``status --json``)."""
        return {
            "opened": self.opened,
            "active": self.active,
            "waiting": self.waiting,
            "failed": self.failed,
            "endedWithTunnel": self.ended_with_tunnel,
            "bytesIn": self.bytes_in,
            "bytesOut": self.bytes_out,
            "rateIn": round(self.rate_in, 1),
            "rateOut": round(self.rate_out, 1),
        }


@dataclass(frozen=True, slots=True)
class ForwardStatus:
    """An immutable snapshot of one forward, the only thing the UI ever sees."""

    spec: ForwardSpec
    state: ForwardState
    reason: str = ""
    local_port: int = 0
    """The port actually used (``spec.local_port`` unless the resolver moved it)."""
    port_moved_reason: str | None = None
    pid: int | None = None
    restarts: int = 0
    """Unplanned restarts (a crash, a dead tunnel, a replaced pod, a context change)."""
    planned_restarts: int = 0
    """Restarts the user or a config change asked for."""
    pod: str | None = None
    """The pod kubectl forwards to, once it has said."""
    running_since: float | None = None
    """Wall-clock time the current Running stretch began; None when not Running."""
    retry_at: float | None = None
    """Wall-clock time a Cooldown/Failed/Suspended forward will next try."""
    connections: int = 0
    """``Handling connection`` lines seen, over all restarts."""
    last_error: str | None = None
    rss: int | None = None
    """kubectl's resident memory in bytes (sampled)."""
    cpu_percent: float | None = None
    history: tuple[Transition, ...] = ()
    probe_latencies: tuple[float, ...] = ()
    """Recent probe round-trips in seconds, oldest first."""
    traffic: Traffic | None = None
    """The front door's counters (None when kubectl listens on the port itself)."""

    @property
    def name(self) -> str:
        """The forward's name."""
        return self.spec.name

    @property
    def url(self) -> str:
        """The URL on the port actually in use."""
        return self.spec.url_for(self.local_port or self.spec.local_port)

    @property
    def port_moved(self) -> bool:
        """True when the resolver moved the forward off its configured port."""
        return bool(self.local_port) and self.local_port != self.spec.local_port


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """Reachability of one cluster (one kube context) as the access probe last saw it."""

    context: str
    """The kube context name (the current context for forwards without ``context``)."""
    server: str = ""
    reachable: bool | None = None
    """None until the first probe answers."""
    reason: str = ""
    fix: str = ""
    """When the credentials fail: the command that fixes them (``aws sso login --profile dev``)."""
