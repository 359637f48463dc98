"""The config the program runs: sources, merging, and the cached loader.

Sources, later wins: the embedded ``default_config.yaml`` → the user file (``$KPORTFORWARD_CONFIG``,
else ``$XDG_CONFIG_HOME/kportforward/config.yaml``, else ``~/.config/kportforward/config.yaml``;
``%APPDATA%\\kportforward\\config.yaml`` on Windows) → the ``--config`` file. A forward named in
several sources is merged field by field; ``disabled: true`` removes it.

:data:`load_config` is cached: the defaults are parsed once per process, a file is re-read only when
its (mtime_ns, size, inode, ctime_ns) changes, and a hit costs one ``stat`` per file plus a dict
lookup. While nothing changed it returns the *same* immutable :class:`Config` object, so
``new is not old`` is a cheap change test. Parsing and checking live in ``config_yaml`` and
``config_schema``; see docs/CONFIG.md for the reference.
"""

from __future__ import annotations

import os
import threading
from importlib import resources
from pathlib import Path
from typing import NamedTuple, Protocol, cast

from kportforward.core.config_schema import (
    FORWARD_KEYS,
    REQUIRED_KEYS,
    TARGET_KINDS,
    Field,
    ParsedSource,
    RawForward,
    parse_document,
)
from kportforward.core.config_yaml import MAX_CONFIG_BYTES, compose, read_text
from kportforward.core.models import Config, ConfigWarning, ForwardSpec, Settings
from kportforward.errors import ConfigError

__all__ = [
    "EMBEDDED",
    "MAX_CONFIG_BYTES",
    "TARGET_KINDS",
    "ConfigCacheInfo",
    "config_sources",
    "load_config",
    "parse_config_text",
    "target_kind",
    "user_config_path",
]

EMBEDDED = "<embedded>"
"""How the embedded defaults appear in :attr:`Config.sources`."""
ENV_VAR = "KPORTFORWARD_CONFIG"
_WINDOWS = os.name == "nt"

_Sig = tuple[int, int, int, int] | None


def target_kind(target: str) -> str:
    """The canonical kind of a validated target: ``svc/api`` → ``service``."""
    return TARGET_KINDS[target.split("/", 1)[0].lower()]


def _user_path_from(env: dict[str, str] | os._Environ[str]) -> tuple[str | None, bool]:
    """(path of the user file, True when it must exist because the user named it)."""
    named = env.get(ENV_VAR)
    if named:
        return os.path.expanduser(named), True
    if _WINDOWS:
        base = env.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
    else:
        xdg = env.get("XDG_CONFIG_HOME")
        # The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
        if xdg and os.path.isabs(xdg):
            base = xdg
        else:
            home = os.path.expanduser("~")
            if home == "~":  # no HOME and no passwd entry: there is no user file
                return None, False
            base = os.path.join(home, ".config")
    return os.path.join(base, "kportforward", "config.yaml"), False


def user_config_path() -> Path:
    """Where the user's config file is (or would be created): the UI's empty state names it."""
    path, _ = _user_path_from(os.environ)
    return Path(path) if path else Path.home() / ".config" / "kportforward" / "config.yaml"


def config_sources(path: str | os.PathLike[str] | None = None) -> list[Path]:
    """The files merged over the embedded defaults, in order, whether or not they exist yet.

    The supervisor watches these (a user file that appears later is picked up). Calling
    :data:`load_config` and comparing the returned object with the previous one works too.
    """
    user, _ = _user_path_from(os.environ)
    out = [Path(user)] if user else []
    if path is not None:
        out.append(Path(os.fspath(path)))
    return out


def _sig(path: str | None) -> _Sig:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    # ctime_ns catches edits that restore mtime (cp -p, some editors); inode catches atomic saves.
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


def _defaults_file() -> tuple[str, str]:
    """(path, text) of the embedded defaults: inside the wheel, else the checkout's root file."""
    packaged = resources.files("kportforward").joinpath("default_config.yaml")
    if packaged.is_file():
        return str(packaged), packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "default_config.yaml"
    try:
        return str(checkout), checkout.read_text(encoding="utf-8")
    except OSError:
        raise ConfigError(
            "the embedded default_config.yaml is missing", "reinstall kportforward"
        ) from None


def parse_config_text(text: str, path: str = "<string>") -> ParsedSource:
    """Check one config document given as text (``path`` only names it in messages)."""
    return parse_document(compose(text, path), path)


def _parse_file(path: str) -> ParsedSource:
    return parse_document(compose(read_text(path), path), path)


def merge(sources: list[ParsedSource]) -> Config:
    """Merge checked sources (earliest first) into the Config the program runs."""
    settings: dict[str, Field] = {}
    entries: dict[str, dict[str, Field]] = {}
    origin: dict[str, RawForward] = {}
    warnings: list[ConfigWarning] = []
    for src in sources:
        warnings.extend(src.warnings)
        settings.update(src.settings)
        for raw in src.forwards:
            entries.setdefault(raw.name, {}).update(raw.fields)
            origin[raw.name] = raw
    specs: list[ForwardSpec] = []
    first_on_port: dict[int, str] = {}
    for name in sorted(entries):
        fields = entries[name]
        disabled = fields.pop("disabled", None)
        if disabled is not None and disabled.value:
            continue
        missing = [key for key in REQUIRED_KEYS if FORWARD_KEYS[key][0] not in fields]
        if missing:
            where = origin[name]
            raise ConfigError(
                f"missing required key{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                "every forward needs target, targetPort and localPort (or disabled: true)",
                path=where.path,
                line=where.line,
                key=f"portForwards.{name}",
            )
        spec = ForwardSpec(name=name, **{k: f.value for k, f in fields.items()})  # type: ignore[arg-type]
        other = first_on_port.setdefault(spec.local_port, name)
        if other != name:
            port = fields["local_port"]
            warnings.append(
                ConfigWarning(
                    f"localPort {spec.local_port} is also used by '{other}'; "
                    "one of them will be moved to a free port",
                    port.path,
                    port.line,
                    f"portForwards.{name}.localPort",
                )
            )
        specs.append(spec)
    values = {k: f.value for k, f in settings.items()}
    used = tuple(EMBEDDED if i == 0 else s.path for i, s in enumerate(sources))
    return Config(tuple(specs), Settings(**values), used, tuple(warnings))  # type: ignore[arg-type]


class ConfigCacheInfo(NamedTuple):
    """Counters of :data:`load_config`'s cache (shown by ``profile`` and the details screen)."""

    hits: int
    misses: int
    entries: int
    """Merged results currently held."""


class ConfigLoader(Protocol):
    """The type of :data:`load_config`: a callable with ``cache_clear()`` and ``cache_info()``."""

    def __call__(self, path: str | os.PathLike[str] | None = None) -> Config:
        """The merged, validated config (``path``: the ``--config`` file); ConfigError if bad."""

    def cache_clear(self) -> None:
        """Forget everything, the embedded defaults included, and zero the counters."""

    def cache_info(self) -> ConfigCacheInfo:
        """Hits, misses and cached results so far."""


_Key = tuple[str | None, bool, str | None]


class _ConfigCache:
    """The state behind :data:`load_config`; the miss path lives here, the hit path does not."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.defaults: ParsedSource | None = None
        self.files: dict[str, tuple[_Sig, ParsedSource]] = {}
        self.results: dict[_Key, tuple[_Sig, _Sig, Config | ConfigError]] = {}
        # raw environment values -> (user file, must exist): resolving a path costs more than a stat
        self.where: dict[tuple[str | None, ...], tuple[str | None, bool]] = {}
        self.hits = 0
        self.misses = 0

    def load(self, key: _Key) -> Config:
        user, required, explicit = key
        with self.lock:
            self.misses += 1
            # Stat before reading: an edit racing with the read changes the signature next time.
            user_sig, explicit_sig = _sig(user), _sig(explicit)
            result: Config | ConfigError
            try:
                sources = [self.embedded()]
                if user is not None and (required or user_sig is not None):
                    sources.append(self.file(user, user_sig))
                if explicit is not None:
                    sources.append(self.file(explicit, explicit_sig))
                result = merge(sources)
            except ConfigError as exc:
                result = exc
            self.results[key] = (user_sig, explicit_sig, result)
        if isinstance(result, Config):
            return result
        raise result.with_traceback(None)

    def embedded(self) -> ParsedSource:
        if self.defaults is None:
            path, text = _defaults_file()
            self.defaults = parse_config_text(text, path)
        return self.defaults

    def file(self, path: str, sig: _Sig) -> ParsedSource:
        cached = self.files.get(path)
        if cached is not None and sig is not None and cached[0] == sig:
            return cached[1]
        parsed = _parse_file(path)
        self.files[path] = (sig, parsed)
        return parsed

    def clear(self) -> None:
        with self.lock:
            self.defaults = None
            self.files.clear()
            self.results.clear()
            self.where.clear()
            self.hits = self.misses = 0

    def info(self) -> ConfigCacheInfo:
        return ConfigCacheInfo(self.hits, self.misses, len(self.results))


_cache = _ConfigCache()


def _load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """The merged, validated config (``path``: the ``--config`` file); ConfigError if bad."""
    # The hot path. The environment is read on every call (it decides which user file applies);
    # then one stat per file and a dict lookup.
    env = os.environ.get
    named = env(ENV_VAR)
    if named:
        raw: tuple[str | None, ...] = (named,)
    else:
        xdg = env("XDG_CONFIG_HOME")
        if xdg and xdg[0] == "/" and not _WINDOWS:  # an absolute XDG dir decides alone
            raw = (None, xdg)
        else:
            raw = (None, xdg, env("HOME"), env("APPDATA"))
    cache = _cache
    where = cache.where.get(raw)
    if where is None:
        where = cache.where[raw] = _user_path_from(os.environ)
    key = (where[0], where[1], None if path is None else os.fspath(path))
    entry = cache.results.get(key)
    if entry is not None and entry[0] == _sig(key[0]) and entry[1] == _sig(key[2]):
        cache.hits += 1
        result = entry[2]
        if isinstance(result, Config):
            return result
        raise result.with_traceback(None)
    return cache.load(key)


_load_config.__dict__.update(cache_clear=_cache.clear, cache_info=_cache.info)
load_config = cast(ConfigLoader, _load_config)
"""``load_config(path=None) -> Config``: the cached loader the program runs (see the module doc).

``load_config.cache_clear()`` forgets everything; ``load_config.cache_info()`` returns
:class:`ConfigCacheInfo` (hits, misses, entries).
"""
