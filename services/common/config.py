"""Typed configuration from the environment: one frozen Struct per service, loaded once at start."""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import msgspec

T = TypeVar("T", bound=msgspec.Struct)

# FRONTDESK_ENV. Production is the default so that a forgotten setting fails closed: development
# relaxes secret strength, serves API docs and allows unauthenticated mail (`make run` sets it).
Environment = Literal["development", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("development", "production")
PLACEHOLDERS = ("change-me", "changeme", "secret", "password", "example")
MIN_SECRET_BYTES = 32


class Secret:
    """A value that must never appear in logs or reprs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ConfigError(ValueError):
    pass


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    """Limits of every stream, bucket and object store (env FRONTDESK_RETENTION_<FIELD>; MB and days).

    nats-server reserves each max_bytes from its store at creation: their sum must fit in max_file_store.
    Work streams refuse new writes when full (the writer keeps its message: 451, spool, nak); the timeline
    drops its oldest entries instead. See deploy/README.md, "Retention".
    """

    requests_mb: int = 512  # a small mail travels whole inside its request (intake_email max_inline_raw)
    requests_days: float = 90
    replies_mb: int = 64
    replies_days: float = 90
    notify_mb: int = 64
    notify_days: float = 30
    outbox_mb: int = 64
    outbox_days: float = 30
    timeline_mb: int = 512
    timeline_days: float = 730
    dead_letters_mb: int = 64
    dead_letters_days: float = 90
    raw_mail_mb: int = 1024
    raw_mail_days: float = 90
    tickets_mb: int = 64
    threads_mb: int = 32
    threads_days: float = 365
    timers_mb: int = 16
    router_mb: int = 32
    router_days: float = 90  # request-id -> ticket records: redeliveries come within days
    sequences_mb: int = 1
    outbound_mb: int = 64
    outbound_days: float = 30
    contacts_mb: int = 16
    windows_mb: int = 16
    windows_days: float = 30
    seen_mb: int = 16
    seen_days: float = 7


class BusConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach NATS. Env: FRONTDESK_NATS_URL (comma-separated), _USER, _PASSWORD (or _PASSWORD_FILE),
    _TOKEN, _CREDS."""

    url: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    user: str = ""
    password: Secret = Secret("")
    password_file: str = ""  # a Docker secret: read once at load, into `password`
    retention: Retention = Retention()  # applied by whoever creates the topology (ops)
    token: Secret = Secret("")
    creds: str = ""  # path to a .creds file
    replicas: int = 1  # stream/bucket replicas (3 in a cluster)
    publish_timeout: float = 5.0


def _dec_hook(type_: type, value: Any) -> Any:
    if type_ is Secret:
        if isinstance(value, Secret):
            return value
        return Secret(str(value))
    raise NotImplementedError(type_)


def _is_sequence(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (tuple, list, frozenset, set):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(arg) for arg in get_args(annotation))
    return False


def _is_struct(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)


def _collect(cls: type[msgspec.Struct], prefix: str, env: Mapping[str, str]) -> dict[str, Any]:
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for name in cls.__struct_fields__:
        annotation = hints[name]
        key = f"{prefix}{name.upper()}"
        if _is_struct(annotation):
            nested = _collect(annotation, f"{key}_", env)
            if nested:
                values[name] = nested
            continue
        if key not in env:
            continue
        raw = env[key]
        if _is_sequence(annotation):
            values[name] = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            values[name] = raw
    return values


def load(cls: type[T], prefix: str, env: Mapping[str, str] | None = None, **overrides: Any) -> T:
    """Build `cls` from env vars named PREFIX + FIELD (nested Structs: PREFIX + FIELD + _ + SUB).

    Errors name the environment variable, e.g. "FRONTDESK_SMTP_PORT: Expected `int`, got `str`".
    """
    source = os.environ if env is None else env
    values = _collect(cls, prefix, source)
    values.update(overrides)
    try:
        return msgspec.convert(values, cls, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        message = str(exc)
        marker = "at `$."
        if marker in message:
            path = message.split(marker, 1)[1].rstrip("`")
            var = prefix + path.replace(".", "_").upper()
            raise ConfigError(f"{var}: {message.split(' - at ', maxsplit=1)[0]}") from None
        raise ConfigError(message) from None


def load_service(
    cls: type[T],
    prefix: str,
    env: Mapping[str, str] | None = None,
    *,
    shared: Mapping[str, str] | None = None,
    **overrides: Any,
) -> T:
    """A service's settings: `load` plus what every service loads the same way.

    The Struct's `bus` comes from `load_bus`, its `environment` from FRONTDESK_ENV, its `workers` (when
    PREFIX + WORKERS is unset or 0) from the cores the process may run on, and each field named in
    `shared` (field -> variable) from a variable several services read (FRONTDESK_POLICY, ...): set and not
    empty, it wins over the service's own PREFIX + FIELD, so one setting reaches every service.
    """
    source = os.environ if env is None else env
    values: dict[str, Any] = {}
    if "bus" in cls.__struct_fields__:
        values["bus"] = load_bus(source)
    if "environment" in cls.__struct_fields__:
        values["environment"] = load_environment(source)
    if "workers" in cls.__struct_fields__ and source.get(f"{prefix}WORKERS", "").strip() in ("", "0"):
        values["workers"] = usable_cores()
    for field, variable in (shared or {}).items():
        if source.get(variable):
            values[field] = source[variable]
    return load(cls, prefix, source, **{**values, **overrides})


MAX_WORKERS = 64


def usable_cores() -> int:
    """The default worker count, one per core: the cores this process may run on (a container's
    cpuset), not every core of the host, and at most MAX_WORKERS."""
    return min(len(os.sched_getaffinity(0)) or 1, MAX_WORKERS)


def load_bus(env: Mapping[str, str] | None = None) -> BusConfig:
    """The bus settings; outside development a user with a strong password (or a token/creds) is required."""
    source = os.environ if env is None else env
    cfg = load(
        BusConfig, "FRONTDESK_NATS_", source, retention=load(Retention, "FRONTDESK_RETENTION_", source)
    )
    password_setting = "FRONTDESK_NATS_PASSWORD"
    if cfg.password_file:
        password_setting = "FRONTDESK_NATS_PASSWORD_FILE"
        try:
            text = Path(cfg.password_file).read_text()
        except OSError as exc:
            raise ConfigError(
                f"{password_setting}: cannot read {cfg.password_file}: {exc.strerror}"
            ) from None
        cfg = msgspec.structs.replace(cfg, password=Secret(text.strip()))
    environment = load_environment(source)
    if cfg.user:
        require_strong(password_setting, cfg.password, environment)
    elif cfg.token:
        require_strong("FRONTDESK_NATS_TOKEN", cfg.token, environment)
    elif not cfg.creds and environment != "development":
        raise ConfigError(
            "FRONTDESK_NATS_USER: required outside development (the bus refuses anonymous clients)"
        )
    return cfg


def load_environment(env: Mapping[str, str] | None = None) -> Environment:
    """FRONTDESK_ENV: `development` or `production` (the default)."""
    source = os.environ if env is None else env
    value = source.get("FRONTDESK_ENV", "production").strip().lower() or "production"
    for known in ENVIRONMENTS:
        if value == known:
            return known
    raise ConfigError(f"FRONTDESK_ENV: expected one of {', '.join(ENVIRONMENTS)}, got {value!r}")


def require_strong(name: str, secret: Secret, environment: Environment) -> None:
    """Outside development refuse a missing, short or placeholder secret, naming the setting."""
    if environment == "development":
        return
    value = secret.reveal()
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"{name}: at least {MIN_SECRET_BYTES} bytes are required outside development")
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDERS):
        raise ConfigError(f"{name}: looks like a placeholder; set a real secret")


def load_thread_secret(env: Mapping[str, str] | None = None) -> Secret:
    """FRONTDESK_THREAD_SECRET signs ticket tokens and Message-IDs: weak, anyone could forge a thread."""
    source = os.environ if env is None else env
    secret = Secret(source.get("FRONTDESK_THREAD_SECRET", ""))
    require_strong("FRONTDESK_THREAD_SECRET", secret, load_environment(source))
    return secret
