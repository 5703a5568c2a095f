"""One validated experiment configuration: the TOML file and the CLI flags, checked before anything is measured.

Dataclasses with explicit checks rather than pydantic: the checks are a few dozen one-liners, the
messages are ours word for word (key, value, what is allowed, one line), and `pnn --help` stays
free of another import. Choices that other modules own (trainers in `nets.TRAINERS`, tasks in
`data.TASKS`, twin kinds, noise fields) are read from them at validation time, so a trainer added
there is accepted here with no edit.

    cfg = config.load("examples/electronic-digits.toml", {"train.epochs": Flag("--epochs", 5)})
    cfg.train.epochs, cfg.as_dict()          # typed access, or the nested dict experiment.run takes

Paths in a TOML file resolve against the file's folder; paths given as flags against the current one.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .datasets import VOWELS as PACKAGED_VOWELS  # shipped with pnn: datasets/README.md
from .link.errors import UserError


class ConfigError(UserError, ValueError):
    """A setting that cannot run; the one-line message names the key, the value and what is allowed."""


@dataclass(frozen=True)
class Flag:
    """A value given on the command line, named as the user typed it (e.g. --epochs)."""

    name: str
    value: Any


# -- checks: each returns the (normalised) value or raises _Bad(what is allowed) -----------------------


class _Bad(Exception):
    def __init__(self, allowed: str) -> None:
        super().__init__(allowed)
        self.allowed = allowed


def _int(lo: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise _Bad(f"an integer >= {lo}")
        return v

    return check


def _number(lo: float, *, open_lo: bool = False) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or v < lo or (open_lo and v == lo):
            raise _Bad(f"a number {'>' if open_lo else '>='} {lo:g}")
        return float(v)

    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad("true or false")
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _Bad("a non-empty string")
    return v


def _one_of(choices: Callable[[], tuple[str, ...]]) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        options = choices()
        if v not in options:
            raise _Bad(_choice_hint(v, options))
        return v

    return check


def _choice_hint(v: Any, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(str(v), options, n=1) if isinstance(v, str) else []
    return f"one of {', '.join(options)}" + (f" (did you mean '{close[0]}'?)" if close else "")


def _int_list(v: Any) -> list[int]:
    if not isinstance(v, list) or not v or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in v):
        raise _Bad("a non-empty list of integers >= 1, e.g. [256, 256]")
    return list(v)


def _trainers(v: Any) -> list[str]:
    from .nets import TRAINERS  # whatever the trainers module holds at run time

    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v:
        raise _Bad(f"a non-empty list of trainers from {', '.join(TRAINERS)}")
    for t in v:
        if t not in TRAINERS:
            raise _Bad(f"trainers from {', '.join(TRAINERS)}; '{t}' is not one" +
                       _did_you_mean(t, TRAINERS))  # fmt: skip
    if len(set(v)) != len(v):
        raise _Bad("each trainer once")
    return list(v)


def _did_you_mean(v: Any, options: Any) -> str:
    close = difflib.get_close_matches(str(v), list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _urls(v: Any) -> str | list[str] | None:
    from .link.url import parse_url

    if v is None or v == "":
        return None
    items = v if isinstance(v, list) else [v]
    if not items or not all(isinstance(u, str) for u in items):
        raise _Bad('a device URL or a list of them, e.g. "serial:///dev/ttyACM0" or ["mqtt://host:1883/plate-1", ...]')
    for u in items:
        try:
            parse_url(u)
        except ValueError as e:
            raise _Bad(f"a valid device URL ({e})") from None
    return v


def _noise(v: Any) -> dict[str, Any]:
    from .physics import Noise

    if not isinstance(v, dict):
        raise _Bad("a table of noise levels")
    known = [f.name for f in fields(Noise)]
    for key, level in v.items():
        if key not in known:
            raise _Bad(f"keys from {', '.join(known)}; '{key}' is not one" + _did_you_mean(key, known))
        bits = key.endswith("_bits")
        if level is None and bits:
            continue
        if isinstance(level, bool) or not isinstance(level, int | float) or level < 0 or (bits and not isinstance(level, int)):
            raise _Bad(f"{key}: {'an integer number of bits' if bits else 'a number >= 0'}")
    return dict(v)


def _path_or_none(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise _Bad("a file path (a string)")
    return v


def _tasks() -> tuple[str, ...]:
    from .data import TASKS

    return tuple(TASKS)


def _system_kinds() -> tuple[str, ...]:
    from .physics import KINDS

    return tuple(KINDS)


def _twin_kinds() -> tuple[str, ...]:
    from .twin_models import ARCHITECTURES

    return tuple(ARCHITECTURES)


def _twin_drives() -> tuple[str, ...]:
    from .twin_data import WHERE

    return WHERE


def _encoders() -> tuple[str, ...]:
    return ("affine", "concat")


def _rule(default: Any, check: Callable[[Any], Any]) -> Any:
    """A config field: its default and its check (kept in the field's metadata)."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"check": check})
    return field(default=default, metadata={"check": check})


# -- the sections ---------------------------------------------------------------------------------------


@dataclass
class ExperimentSection:
    name: str = _rule("experiment", _text)


@dataclass
class TaskSection:
    name: str = _rule("digits", _one_of(_tasks))
    data: str | None = _rule(None, _path_or_none)


@dataclass
class SystemSection:
    kind: str = _rule("electronic", _one_of(_system_kinds))
    url: str | list[str] | None = _rule(None, _urls)
    n_in: int = _rule(64, _int(1))
    n_out: int = _rule(64, _int(1))
    seed: int = _rule(0, _int(0))
    noise: dict[str, Any] = _rule({}, _noise)
    patience: float = _rule(600.0, _number(0))  # seconds to wait for a board when all are gone


@dataclass
class TwinSection:
    samples: int = _rule(3000, _int(10))
    epochs: int = _rule(150, _int(1))
    kind: str = _rule("mlp", _one_of(_twin_kinds))
    hidden: list[int] = _rule([256, 256], _int_list)
    channels: int = _rule(32, _int(1))
    kernel: int = _rule(16, _int(1))
    repeats: int = _rule(1, _int(1))
    drives: str = _rule("uniform", _one_of(_twin_drives))  # where its data is measured (pnn.twin_data)
    path: str | None = _rule(None, _path_or_none)


@dataclass
class TrainSection:
    trainers: list[str] = _rule(["digital", "linear", "in-silico", "pat"], _trainers)
    depth: int = _rule(2, _int(1))
    encoder: str = _rule("affine", _one_of(_encoders))
    epochs: int = _rule(20, _int(1))
    batch_size: int = _rule(32, _int(1))
    lr: float = _rule(0.02, _number(0, open_lo=True))
    seed: int = _rule(0, _int(0))
    seeds: int = _rule(1, _int(1))  # training seeds seed, seed+1, ...: the table reports mean +- std
    mix: bool = _rule(False, _bool)  # a trainable digital Linear before each encoder (nets.TrainConfig)
    data_width: int = _rule(0, _int(0))  # concat: drive bins for the data (0: the input's width)
    norm: str = _rule("twin", _one_of(lambda: ("twin", "batch")))


SECTIONS: dict[str, type] = {"experiment": ExperimentSection, "task": TaskSection, "system": SystemSection,
                             "twin": TwinSection, "train": TrainSection}  # fmt: skip


@dataclass
class Config:
    """A whole experiment, every value checked; `source` is the TOML file it came from (None: built in code)."""

    experiment: ExperimentSection = field(default_factory=ExperimentSection)
    task: TaskSection = field(default_factory=TaskSection)
    system: SystemSection = field(default_factory=SystemSection)
    twin: TwinSection = field(default_factory=TwinSection)
    train: TrainSection = field(default_factory=TrainSection)
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The nested dict (the TOML's shape, paths resolved) that experiment.run and config.json hold."""
        return {name: asdict(getattr(self, name)) for name in SECTIONS}


def _where(section: str, key: str, flag: Flag | None, source: str | None) -> str:
    if flag is not None:
        return f"{flag.name} {flag.value!r} ([{section}] {key})"
    return (f"{source}: " if source else "") + f"[{section}] {key}"


def _fail(where: str, value: Any, allowed: str) -> ConfigError:
    if where.startswith("--"):
        return ConfigError(f"{where}: must be {allowed}")
    return ConfigError(f"{where} = {value!r}: must be {allowed}")


def parse(raw: Mapping[str, Any], overrides: Mapping[str, Flag] | None = None, *, source: str | Path | None = None
          ) -> Config:
    """Check `raw` (a TOML file's tables) and `overrides` ({"section.key": Flag}) into a Config.

    Raises:
        ConfigError: the first bad section, key or value, in one line.
    """
    src = str(source) if source is not None else None
    base = Path(source).resolve().parent if source is not None else Path.cwd()
    cfg = Config(source=src)
    given: dict[tuple[str, str], tuple[Any, Flag | None]] = {}
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown section [{section}]{_did_you_mean(section, SECTIONS)}; sections are "
                              + ", ".join(f"[{s}]" for s in SECTIONS))  # fmt: skip
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table of keys, not {values!r}")
        known = [f.name for f in fields(SECTIONS[section])]
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"unknown key '{key}' in [{section}]{_did_you_mean(key, known)}; "
                                  f"known keys: {', '.join(known)}")  # fmt: skip
            given[(section, key)] = (value, None)
    for dotted, flag in (overrides or {}).items():
        if flag.value is not None:
            section, key = dotted.split(".")
            given[(section, key)] = (flag.value, flag)
    for (section, key), (value, flag) in given.items():
        spec = next(f for f in fields(SECTIONS[section]) if f.name == key)
        try:
            checked = spec.metadata["check"](value)
        except _Bad as e:
            raise _fail(_where(section, key, flag, src), value, e.allowed) from None
        setattr(getattr(cfg, section), key, checked)
    _check_paths(cfg, given, base)
    _check_together(cfg)
    return cfg


def _resolve(value: str, flag: Flag | None, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() or flag is not None else base / p


def _check_paths(cfg: Config, given: dict, base: Path) -> None:
    """Data and twin files exist (TOML paths are relative to the TOML file); the task gets what it needs."""
    data_given = given.get(("task", "data"), (None, None))[1]
    task = cfg.task
    if task.data is not None:
        if task.name == "digits":
            where = _where("task", "data", data_given, cfg.source)
            raise _fail(where, task.data, "left out: the digits task ships with scikit-learn and reads no data file")
        path = _resolve(task.data, data_given, base)
        if not path.exists():
            what = "a vowel CSV (columns f0..f11,label,vowel,split)" if task.name == "vowels" else "a folder of idx files"
            raise _fail(_where("task", "data", data_given, cfg.source), task.data,
                        f"{what} that exists; there is no {path}")  # fmt: skip
        task.data = str(path.resolve())
    elif task.name == "vowels":
        task.data = str(PACKAGED_VOWELS)  # the subset shipped with pnn (datasets/README.md)
    elif task.name == "mnist":
        raise ConfigError("[task] name = 'mnist' needs [task] data (or --data): a folder with the four MNIST idx files")
    if cfg.twin.path is not None:
        flag = given.get(("twin", "path"), (None, None))[1]
        path = _resolve(cfg.twin.path, flag, base)
        if not path.exists():
            raise _fail(_where("twin", "path", flag, cfg.source), cfg.twin.path, f"a saved twin file that exists; there is no {path}")
        cfg.twin.path = str(path.resolve())


def _check_together(cfg: Config) -> None:
    """Values that are fine alone but not together (simulated systems: a URL's shape is the board's to say)."""
    if cfg.system.url is not None or cfg.train.mix or cfg.train.data_width:
        return  # a board's shape is its own to say; mix and data_width set the drive's layout themselves
    n_in, n_out, features = cfg.system.n_in, cfg.system.n_out, _features(cfg.task.name)
    widths = {features} | ({n_out} if cfg.train.depth > 1 else set())
    if cfg.train.encoder == "concat" and n_in <= max(widths):
        raise ConfigError(f"[system] n_in = {n_in}: the concat encoder puts {max(widths)} values and trainable "
                          "parameters side by side in one drive, so n_in must be larger")  # fmt: skip
    bad = [w for w in sorted(widths) if n_in % w]
    if cfg.train.encoder == "affine" and bad:
        raise ConfigError(f"[system] n_in = {n_in}: the affine encoder holds each of a layer's {bad[0]} input values "
                          f"for n_in / {bad[0]} ticks, so n_in must be a multiple of {bad[0]}")  # fmt: skip
    if cfg.twin.kind == "temporal" and n_in % n_out:
        raise ConfigError(f"[twin] kind = 'temporal' needs n_in ({n_in}) to be a multiple of n_out ({n_out})")


def _features(task: str) -> int:
    return {"digits": 64, "vowels": 12, "mnist": 196, "fashion-mnist": 196}.get(task, 1)


def load(path: str | Path, overrides: Mapping[str, Flag] | None = None) -> Config:
    """Read, check and resolve an experiment TOML file (and the flags that override it)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no experiment file '{p}'; see examples/*.toml for the format")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p} is not valid TOML: {e}") from e
    return parse(raw, overrides, source=p)
