"""The config the program runs: sources, merging, and the cached loader.

Sources, later wins: the embedded ``default_config.yaml`` → the remote defaults, when installed
(:func:`set_remote_defaults`; fetching them is :mod:`kportforward.remote_defaults`' job, core stays
pure) → the user file (see :mod:`kportforward.core.config_paths`) → the ``--config`` file. A forward
named in several sources is merged field by field; ``disabled: true`` removes it. A forward with a
bad value goes to :attr:`Config.rejected` and the others load.

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

from kportforward.core.config_paths import ENV_VAR, UserPaths, fallback_note, user_paths
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
from kportforward.core.models import Config, ConfigWarning, ForwardProblem, ForwardSpec, Settings
from kportforward.errors import ConfigError

__all__ = [
    "EMBEDDED",
    "MAX_CONFIG_BYTES",
    "TARGET_KINDS",
    "ConfigCacheInfo",
    "config_sources",
    "configured_url",
    "load_config",
    "parse_config_text",
    "remote_defaults",
    "set_remote_defaults",
    "target_kind",
    "user_config_path",
]

EMBEDDED = "<embedded>"
"""How the embedded defaults appear in :attr:`Config.sources`."""

_Sig = tuple[int, int, int, int] | None


def target_kind(target: str) -> str:
    """The canonical kind of a validated target: ``svc/api`` → ``service``."""
    return TARGET_KINDS[target.split("/", 1)[0].lower()]


def user_config_path() -> Path:
    """Where the user's config file is (or would be created): the UI's empty state names it."""
    where = user_paths(os.environ)
    fallback = where.fallback
    if where.path and fallback and not os.path.exists(where.path) and os.path.exists(fallback):
        return Path(fallback)
    return (
        Path(where.path) if where.path else Path.home() / ".config" / "kportforward" / "config.yaml"
    )


def config_sources(path: str | os.PathLike[str] | None = None) -> list[Path]:
    """The files merged over the defaults, in order, whether or not they exist yet.

    The supervisor watches these (a user file that appears later is picked up; the Go tool's
    file is listed too when it is the fallback). Calling :data:`load_config` and comparing the
    returned object with the previous one works too.
    """
    where = user_paths(os.environ)
    out = [Path(where.path)] if where.path else []
    if where.fallback:
        out.append(Path(where.fallback))
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


MAX_MERGED_WARNINGS = 50
"""Warnings a merged Config keeps; the rest are counted in one "and N more" warning."""


def merge(sources: list[ParsedSource], notes: tuple[ConfigWarning, ...] = ()) -> Config:
    """Merge checked sources (earliest first) into the Config the program runs.

    A forward with a bad value (one no later source overrides) or a missing required key goes to
    :attr:`Config.rejected`; the others load. ``notes`` are warnings about the sources themselves.
    """
    settings: dict[str, Field] = {}
    entries: dict[str, dict[str, Field | ConfigError]] = {}
    whole: dict[str, list[ConfigError]] = {}
    origin: dict[str, RawForward] = {}
    warnings: list[ConfigWarning] = list(notes)
    for src in sources:
        warnings.extend(src.warnings)
        settings.update(src.settings)
        for raw in src.forwards:
            fields = entries.setdefault(raw.name, {})
            fields.update(raw.fields)
            for field_name, error in raw.errors:
                if field_name:
                    fields[field_name] = error
                else:
                    whole.setdefault(raw.name, []).append(error)
            origin[raw.name] = raw
    specs: list[ForwardSpec] = []
    rejected: list[ForwardProblem] = []
    first_on_port: dict[int, str] = {}
    for name in sorted(entries):
        fields = entries[name]
        disabled = fields.pop("disabled", None)
        if isinstance(disabled, Field) and disabled.value:
            continue
        errors = list(whole.get(name, ()))
        errors += [f for f in fields.values() if isinstance(f, ConfigError)]
        if isinstance(disabled, ConfigError):
            errors.append(disabled)
        missing = [key for key in REQUIRED_KEYS if FORWARD_KEYS[key][0] not in fields]
        if missing and not errors:
            where = origin[name]
            errors.append(
                ConfigError(
                    f"missing required key{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                    "every forward needs target, targetPort and localPort (or disabled: true)",
                    path=where.path,
                    line=where.line,
                    key=f"portForwards.{name}",
                )
            )
        if errors:
            rejected.append(ForwardProblem(name, _problem_text(errors)))
            continue
        values = {k: f.value for k, f in fields.items() if isinstance(f, Field)}
        spec = ForwardSpec(name=name, **values)  # type: ignore[arg-type]
        other = first_on_port.setdefault(spec.local_port, name)
        if other != name:
            port = cast(Field, fields["local_port"])
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
    if len(warnings) > MAX_MERGED_WARNINGS:
        more = len(warnings) - MAX_MERGED_WARNINGS
        warnings[MAX_MERGED_WARNINGS:] = [ConfigWarning(f"and {more} more warnings (not shown)")]
    return Config(
        tuple(specs),
        Settings(**values),  # type: ignore[arg-type]
        used,
        tuple(warnings),
        tuple(rejected),
    )


def _problem_text(errors: list[ConfigError]) -> str:
    """One line for a rejected forward: its first problem, then the others briefly."""
    text = str(errors[0])
    for extra in errors[1:4]:
        text += f" | also {extra}"
    if len(errors) > 4:
        text += f" | and {len(errors) - 4} more"
    return text


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


_Key = tuple[str | None, bool, str | None, str | None]
"""(user file, must exist, Go tool's fallback file, --config file)."""


class _ConfigCache:
    """The state behind :data:`load_config`; the miss path lives here, the hit path does not."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.defaults: ParsedSource | None = None
        self.remote: ParsedSource | None = None
        self.files: dict[str, tuple[_Sig, ParsedSource]] = {}
        self.results: dict[_Key, tuple[tuple[_Sig, _Sig, _Sig], Config | ConfigError]] = {}
        # raw environment values -> where the user file is: resolving costs more than a stat
        self.where: dict[tuple[str | None, ...], UserPaths] = {}
        # Notes about which user file is used are said once per process, not on every reload.
        self.noted: set[str] = set()
        self.hits = 0
        self.misses = 0

    def load(self, key: _Key) -> Config:
        user, required, fallback, explicit = key
        with self.lock:
            self.misses += 1
            # Stat before reading: an edit racing with the read changes the signature next time.
            sigs = (_sig(user), _sig(fallback), _sig(explicit))
            result: Config | ConfigError
            try:
                sources = [self.embedded()]
                if self.remote is not None:
                    sources.append(self.remote)
                notes: tuple[ConfigWarning, ...] = ()
                chosen = self.user_file(user, required, fallback, sigs)
                if chosen is not None:
                    sources.append(self.file(chosen[0], chosen[1]))
                    notes = tuple(n for n in chosen[2] if n.message not in self.noted)
                    self.noted.update(n.message for n in notes)
                if explicit is not None:
                    sources.append(self.file(explicit, sigs[2]))
                result = merge(sources, notes)
            except ConfigError as exc:
                result = exc
            self.results[key] = (sigs, result)
        if isinstance(result, Config):
            return result
        raise result.with_traceback(None)

    def user_file(
        self,
        user: str | None,
        required: bool,
        fallback: str | None,
        sigs: tuple[_Sig, _Sig, _Sig],
    ) -> tuple[str, _Sig, tuple[ConfigWarning, ...]] | None:
        """(path, signature, notes) of the user file to merge, or None when there is none."""
        if user is None:
            return None
        if fallback is None or sigs[1] is None:
            return (user, sigs[0], ()) if required or sigs[0] is not None else None
        same = sigs[0] is not None and _same_content(user, fallback)
        note = fallback_note(user, fallback, ours_exists=sigs[0] is not None, same=same)
        notes = () if note is None else (note,)
        if sigs[0] is None:
            return fallback, sigs[1], notes
        return user, sigs[0], notes

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

    def set_remote(self, source: ParsedSource | None) -> None:
        with self.lock:
            if source is self.remote:
                return
            self.remote = source
            self.results.clear()  # every merged result includes (or lacks) the remote layer

    def clear(self) -> None:
        with self.lock:
            self.defaults = None
            self.remote = None
            self.files.clear()
            self.results.clear()
            self.where.clear()
            self.noted.clear()
            self.hits = self.misses = 0

    def info(self) -> ConfigCacheInfo:
        return ConfigCacheInfo(self.hits, self.misses, len(self.results))


def _same_content(a: str, b: str) -> bool:
    try:
        return read_text(a) == read_text(b)
    except ConfigError:
        return False


_cache = _ConfigCache()


def _load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """The merged, validated config (``path``: the ``--config`` file); ConfigError if bad."""
    # The hot path. The environment is read on every call (it decides which user file applies);
    # then one stat per file and a dict lookup.
    env = os.environ.get
    named = env(ENV_VAR)
    raw: tuple[str | None, ...] = (
        (named,) if named else (None, env("XDG_CONFIG_HOME"), env("HOME"), env("APPDATA"))
    )
    cache = _cache
    where = cache.where.get(raw)
    if where is None:
        where = cache.where[raw] = user_paths(os.environ)
    key = (*where, None if path is None else os.fspath(path))
    entry = cache.results.get(key)
    if entry is not None:
        sigs = entry[0]
        if sigs[0] == _sig(key[0]) and sigs[1] == _sig(key[2]) and sigs[2] == _sig(key[3]):
            cache.hits += 1
            result = entry[1]
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


def set_remote_defaults(source: ParsedSource | None) -> None:
    """Install (or with None, remove) the remote defaults layer, merged over the embedded ones.

    ``source`` comes from :func:`parse_config_text` (so it is already validated); its ``path`` is
    how it appears in :attr:`Config.sources`. Cached results are dropped; the next
    :data:`load_config` returns a new Config. Installing the same object again changes nothing.
    """
    _cache.set_remote(source)


def remote_defaults() -> ParsedSource | None:
    """The remote defaults layer currently installed, if any."""
    return _cache.remote


def configured_url(path: str | os.PathLike[str] | None = None) -> str | None:
    """``configUrl`` from the user file or the ``--config`` file (the later wins); None if unset.

    A broken file gives None here: :data:`load_config` reports it properly.
    """
    where = user_paths(os.environ)
    candidates = [
        where.path,
        where.fallback if where.path and not os.path.exists(where.path) else None,
    ]
    if path is not None:
        candidates.append(os.fspath(path))
    url = None
    for candidate in candidates:
        if candidate is None or _sig(candidate) is None:
            continue
        try:
            with _cache.lock:
                parsed = _cache.file(candidate, _sig(candidate))
        except ConfigError:
            continue
        if parsed.config_url is not None:
            url = str(parsed.config_url.value)
    return url
