"""Configuration: named YAML blocks merged left to right, then dotted overrides, into one typed, frozen config.

The blocks live in ``configs.yaml`` next to this module. ``defaults`` declares every key and, through its value,
the key's type; the other blocks (model sizes ``debug small medium large xlarge``, domains ``atari safetygym
safetygym_vision grid quickstart``) override some keys. A block may start from other blocks with
``_include: [a, b]``. Resolution order:

1. ``defaults``;
2. each block named by ``--configs a b`` in order (later wins);
3. dotted overrides in command-line order: ``--run.steps 1e7``, ``--env.atari.labels death early-surface``,
   ``--task atari_seaquest``, ``--logdir runs/x``. A key written as a regular expression (``--'.*\\.units' 64``)
   sets every key it matches in full, as in the reference.

Values are parsed by the type of the default: an int key takes ``1e7`` (must be integral), a float key takes any
number, a bool key takes ``True/False/true/false`` (a bare ``--plpg`` means True), a list key takes several values
after one flag, a string key takes the text, and a key whose default is ``null`` (an env option left to the
environment's own default) takes any YAML value (several values make a list). Anything else -- an unknown block,
an unknown key, a value of the wrong type, a value outside the accepted choices or range -- raises a one-line
:class:`ConfigError` that says what is accepted.

``run.log_every`` and ``run.save_every`` count **agent steps**, not seconds (the reference used wall-clock seconds,
spec §14.22, which made logs and checkpoints depend on machine speed). ``run.steps`` counts agent steps summed
over the ``envs.amount`` environments.

The result is a :class:`Config`: an immutable nested mapping with attribute access (``cfg.run.steps``) that
round-trips through YAML (:meth:`Config.to_yaml`, :meth:`Config.from_yaml`).
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .runs import absolute_path

__all__ = [
    "CONFIGS_PATH",
    "Config",
    "ConfigError",
    "absolute_task",
    "block_names",
    "env_family",
    "env_options",
    "in_interval",
    "load_blocks",
    "parse_interval",
    "parse_train_args",
    "range_of",
    "resolve",
]

CONFIGS_PATH = Path(__file__).with_name("configs.yaml")

# Keys whose string value must be one of a few choices.
CHOICES: dict[str, tuple[str, ...]] = {
    "agent": ("ambs", "dreamer", "lagrangian", "rainbow", "iqn", "dqn"),
    "jax.platform": ("cpu", "gpu", "cuda", "tpu"),
    "jax.precision": ("float32", "bfloat16", "float16"),
    "actor_grad": ("auto", "reinforce", "backprop"),
    "decoder.vector_dist": ("symlog_mse", "onehot"),
    "shield.event": ("discounted", "within"),
    # the reference's key: the task policy's cost critic is always the twin (TD3-style) critic the shield bootstraps
    # from; a single-critic "vfunction" is not implemented, so it is refused rather than ignored
    "safety_critic_type": ("td3vfunction",),
    "penalty.penl_critic_type": ("vfunction", "td3vfunction"),
    "safety.twin_reduction": ("min", "max", "mean"),
    "shield.rule": ("estimate", "bound", "sequential"),
    # env options of a family other than the task's are never built, so their choices are checked here
    "env.atari.actions": ("all", "minimal"),
    "env.atari.lives": ("unused", "terminate", "reset"),
    "env.safetygym.observation": ("vector", "image", "both", "vision"),
}
# The accepted range of every numeric key: glob patterns over dotted keys, the first match wins, and a list key
# applies it to each element. "[" and "]" include the end, "(" and ")" exclude it; every number must be finite.
# tests/test_config.py checks that every numeric key of ``defaults`` has one.
RANGES: dict[str, str] = {
    "seed": "[0, 4294967295]",
    "envs.amount": "[1, inf)",
    "env.atari.size": "[8, inf)",
    "env.atari.sticky": "[0, 1]",
    "env.atari.noops": "[0, inf)",
    "env.*.cost_val": "[0, inf)",
    "env.*.repeat": "[1, inf)",
    "env.*.max_steps": "[1, inf)",
    "env.*.length": "[1, inf)",
    "env.*.image_size": "[8, inf)",
    "run.train_ratio": "[0, inf)",
    "run.train_fill": "[0, inf)",
    "run.*": "[1, inf)",  # steps, log_every, save_every, keep_checkpoints
    "jax.devices": "[0, inf)",  # 0: every device of jax.platform
    "replay.*": "[1, inf)",
    "rssm.unimix": "[0, 1)",
    "rssm.action_clip": "(0, inf)",
    "rssm.*": "[1, inf)",  # deter, units, stoch, classes
    "*coder.mlp_layers": "[0, inf)",
    "*coder.*": "[1, inf)",  # cnn_depth, minres, mlp_units
    "*.layers": "[0, inf)",
    "*.bins": "[2, inf)",
    "*.units": "[1, inf)",
    "loss_scales.*": "[0, inf)",
    "free_bits": "[0, inf)",
    "*opt.lr": "(0, inf)",
    "*opt.eps": "[0, inf)",
    "*opt.clip": "(0, inf)",
    "actor.minstd": "(0, inf)",
    "actor.maxstd": "(0, inf)",
    "actor.unimix": "[0, 1)",
    "imag_horizon": "[1, inf)",
    "horizon": "[1, inf)",
    "safety.safety_horizon": "[1, inf)",
    "return_lambda": "[0, 1]",
    "*slow*_update": "[1, inf)",
    "*slow*_fraction": "(0, 1]",
    "retnorm.decay": "[0, 1)",
    "retnorm.max": "(0, inf)",
    "retnorm.perc*": "[0, 100]",
    "actent": "[0, inf)",
    "shield.eps": "[0, 1)",  # the shield overrides when p_hat > eps: from 1 on it would never act
    "shield.threshold_horizon": "[1, inf)",
    "shield.samples": "[1, inf)",
    "shield.delta_safe": "(0, 1)",
    "shield.bound_delta": "(0, 1)",
    "shield.candidates": "[0, inf)",
    "shield.batch": "[1, inf)",
    "shield.growth": "[1, inf)",
    "safety.safe_reward_scale": "[0, inf)",
    "safety.cost_val": "(0, inf)",
    "penalty.penalty_coeff": "[0, inf)",
    "penalty.sigmoid_scale": "(0, inf)",
    "lagrangian.*": "[0, inf)",
    "baselines.gamma": "[0, 1]",
    "baselines.epsilon_train": "[0, 1]",
    "baselines.epsilon_eval": "[0, 1]",
    "baselines.min_replay_history": "[0, inf)",
    "baselines.reward_clip": "[0, inf)",
    "baselines.rmsprop_decay": "[0, 1)",
    "baselines.rmsprop_eps": "(0, inf)",
    "baselines.rainbow.v_max": "(0, inf)",
    "baselines.rainbow.*_exponent": "[0, 1]",
    "baselines.*.learning_rate": "(0, inf)",
    "baselines.*.adam_eps": "(0, inf)",
    "baselines.*.kappa": "(0, inf)",
    "baselines.*.huber_delta": "(0, inf)",
    "baselines.rainbow.num_atoms": "[2, inf)",
    "baselines.*": "[1, inf)",  # sizes, periods, update horizons, samples; num_atoms is 2+ ("*.bins" is not it)
}
# Keys whose default is null (meaning "take it from elsewhere") that take a number when set.
NUMERIC_NULLABLE = ("safety.cost_val",)
# The reference's flat spellings of keys that live in a block (a block holds one dataclass's fields, built as
# ``Cls(**block)``): accepted wherever a key is (command line, overrides, blocks, stored config.yaml files) and
# rewritten to the block's key, which is the dataclass field's name. ``--shield_samples 64`` is ``--shield.samples
# 64``; ``--safety_critic_opt.lr`` is ``--safety.safety_critic_opt.lr``.
ALIASES: dict[str, str] = {
    "shielding": "safety.shielding",
    "shield_bootstrap": "safety.shield_bootstrap",
    "safe_reward_scale": "safety.safe_reward_scale",
    "cost_val": "safety.cost_val",
    "clip_costs": "safety.clip_costs",
    "safety_horizon": "safety.safety_horizon",
    "twin_reduction": "safety.twin_reduction",
    "safety_critic_opt": "safety.safety_critic_opt",
    "slow_safety_critic_update": "safety.slow_safety_critic_update",
    "slow_safety_critic_fraction": "safety.slow_safety_critic_fraction",
    "shield_samples": "shield.samples",
    "shield_horizon": "shield.threshold_horizon",
    "shield_eps": "shield.eps",
    "shield_rule": "shield.rule",
    "shield_delta_safe": "shield.delta_safe",
    "shield_bound_delta": "shield.bound_delta",
    "shield_event": "shield.event",
    "shield_candidates": "shield.candidates",
    "penalty_coeff": "penalty.penalty_coeff",
    "penl_critic_type": "penalty.penl_critic_type",
    "use_safety_critic_params": "penalty.use_safety_critic_params",
    "plpg": "penalty.plpg",
    "copt": "penalty.copt",
    "sigmoid_scale": "penalty.sigmoid_scale",
    "lagrange_mult": "lagrangian.lagrange_mult",
    "penalty_mult": "lagrangian.penalty_mult",
    "penalty_pow": "lagrangian.penalty_pow",
    "cost_threshold": "lagrangian.cost_threshold",
}
# The model-free baselines' keys (``baselines:``); checks across keys are in ``rollout/agents.py``.
CHOICES.update(
    {
        "baselines.atari_preprocessing": ("dopamine", "config"),
        "baselines.torso": ("auto", "nature", "mlp"),
        "baselines.optimizer": ("adam", "rmsprop"),
    }
)
_REGEX_CHARS = re.compile(r"[*+?\[\]()|\\^$]")


class ConfigError(ValueError):
    """Bad config block, key or value; the one-line message says what is accepted."""


# ------------------------------------------------------------------------------------------------ Config


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Config(value)
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Config):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


class Config(Mapping):
    """An immutable nested mapping with attribute access: ``cfg.run.steps`` or ``cfg["run"]["steps"]``.

    Lists are stored as tuples, so a config is hashable and can be a static argument of ``jax.jit``.

    Parameters
    ----------
    data : Mapping
        Nested plain data (as read from YAML). It is copied; no validation happens here (see :func:`resolve`).
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]):
        object.__setattr__(self, "_data", {str(k): _freeze(v) for k, v in data.items()})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is immutable; use Config.replace(...)")

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.flat().items())))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self.to_dict() == (other.to_dict() if isinstance(other, Config) else _thaw(Config(other)))

    def __repr__(self) -> str:
        return f"Config({self.to_dict()!r})"

    def __reduce__(self):  # pickling goes through plain data (the class blocks attribute assignment)
        return (Config, (self.to_dict(),))

    def get_path(self, dotted: str) -> Any:
        """The value at a dotted key such as ``"run.steps"``; :class:`KeyError` when absent."""
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Config) or part not in node:
                raise KeyError(dotted)
            node = node[part]
        return node

    def flat(self) -> dict[str, Any]:
        """``{"run.steps": 10, "env.atari.labels": ("death",), ...}``: every leaf under its dotted key."""
        out: dict[str, Any] = {}
        for key, value in self._data.items():
            if isinstance(value, Config) and len(value):
                out.update({f"{key}.{k}": v for k, v in value.flat().items()})
            else:
                out[key] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts and lists (what YAML and JSON write)."""
        return _thaw(self)

    def to_yaml(self) -> str:
        """The config as YAML text, in key order; :meth:`from_yaml` reads it back to an equal config."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str, *, validate: bool = True) -> Config:
        """Read a config written by :meth:`to_yaml`.

        Parameters
        ----------
        text : str
            YAML text of a (resolved) config.
        validate : bool
            Check keys, types and ranges against ``defaults`` (keys it leaves out keep their defaults).
        """
        data = yaml.safe_load(text) or {}
        if not isinstance(data, Mapping):
            raise ConfigError("a config file must hold a mapping of keys to values")
        if not validate:
            return cls(data)
        return resolve(overrides=_flatten_mapping(data))

    def replace(self, overrides: Mapping[str, Any]) -> Config:
        """A new config with dotted ``overrides`` applied and validated (like the command line's)."""
        blocks = load_blocks()
        data = self.to_dict()
        for key, value in overrides.items():
            _set_key(data, blocks["defaults"], key, value)
        return _finish(data)


def _flatten_mapping(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(_flatten_mapping(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ---------------------------------------------------------------------------------------------- blocks


@cache
def _read_blocks(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        blocks = yaml.safe_load(f)
    if not isinstance(blocks, dict) or not isinstance(blocks.get("defaults"), dict):
        raise ConfigError(f"{path} must map block names to mappings and hold a 'defaults' block")
    return blocks


def load_blocks(path: str | Path | None = None) -> dict[str, Any]:
    """All named blocks of ``configs.yaml`` (or ``path``), as plain data (a deep copy, safe to modify)."""
    return copy.deepcopy(_read_blocks(Path(path) if path is not None else CONFIGS_PATH))


def block_names(path: str | Path | None = None) -> list[str]:
    """Names accepted by ``--configs`` (every block except ``defaults``)."""
    return [name for name in _read_blocks(Path(path) if path is not None else CONFIGS_PATH) if name != "defaults"]


def _apply_block(data: dict, blocks: Mapping[str, Any], name: str, stack: tuple[str, ...] = ()) -> None:
    if name not in blocks or name == "defaults":
        accepted = ", ".join(n for n in blocks if n != "defaults")
        raise ConfigError(f"unknown config block {name!r}; accepted: {accepted}")
    if name in stack:
        raise ConfigError(f"config block {name!r} includes itself (through {' -> '.join(stack)})")
    block = dict(blocks[name] or {})
    includes = block.pop("_include", [])
    for included in [includes] if isinstance(includes, str) else includes:
        _apply_block(data, blocks, included, (*stack, name))
    for key, value in _flatten_mapping(block).items():
        _set_key(data, blocks["defaults"], key, value, source=f"block {name!r}: ")


# --------------------------------------------------------------------------------------- keys and types


def _node(defaults: Mapping[str, Any], key: str) -> Any:
    """The default at a dotted key, or a one-line error naming the accepted keys."""
    node: Any = defaults
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            parent = ".".join(parts[:i])
            siblings = list(node) if isinstance(node, Mapping) else []
            every = list(_flatten_mapping(defaults))
            close = difflib.get_close_matches(key, every, n=1, cutoff=0.7)
            hint = f" (did you mean {close[0]}?)" if close else ""
            where = f"keys under {parent}" if parent else "top-level keys"
            raise ConfigError(f"unknown config key {key!r}{hint}; {where}: {', '.join(siblings)}")
        node = node[part]
    return node


def canonical_key(key: str) -> str:
    """``key`` with a flat alias (:data:`ALIASES`) rewritten to its block's key; any other key as it is."""
    head, dot, rest = key.partition(".")
    target = ALIASES.get(head.replace("-", "_"))
    return key if target is None else target + dot + rest


def migrate(data: Mapping[str, Any]) -> dict[str, Any]:
    """A config mapping (a block, a stored ``config.yaml``) with its flat aliases moved into their blocks."""
    out = copy.deepcopy(dict(data))
    for old in [k for k in out if canonical_key(k) != k]:
        value = out.pop(old)
        *parents, leaf = canonical_key(old).split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if isinstance(value, Mapping) and isinstance(node.get(leaf), Mapping):
            node[leaf] = {**node[leaf], **value}
        else:
            node[leaf] = value
    return out


def _resolve_key(defaults: Mapping[str, Any], key: str) -> str:
    """Accept ``run.train-ratio`` for ``run.train_ratio``, and the flat aliases (:data:`ALIASES`)."""
    key = canonical_key(key)
    try:
        _node(defaults, key)
        return key
    except ConfigError:
        alt = key.replace("-", "_")
        if alt != key:
            try:
                _node(defaults, alt)
                return alt
            except ConfigError:
                pass
        raise


def _describe(default: Any) -> str:
    if isinstance(default, bool):
        return "True or False"
    if isinstance(default, int):
        return "an integer (1e7 is accepted)"
    if isinstance(default, float):
        return "a number"
    return "text"


def _scalar(key: str, default: Any, value: Any) -> Any:
    bad = ConfigError(f"--{key} expects {_describe(default)} (got {value!r})")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad
    if isinstance(default, int):
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad
    if isinstance(default, float):
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if isinstance(value, str):
        return value
    raise bad


def _yaml_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def _coerce(key: str, default: Any, value: Any) -> Any:
    """Parse/check ``value`` (a CLI token, a list of tokens, or a Python value) by the type of ``default``."""
    if isinstance(default, Mapping):
        first = next(iter(default), "key")
        raise ConfigError(f"{key} is a group of keys ({', '.join(default)}); set one, e.g. --{key}.{first} VALUE")
    if default is None:  # an env option left to the env's own default: any YAML value
        if isinstance(value, _Tokens):  # one token stays a scalar, several make a list
            return _yaml_value(value[0]) if len(value) == 1 else [_yaml_value(v) for v in value]
        if isinstance(value, list | tuple):
            return [_yaml_value(v) for v in value]
        return _yaml_value(value)
    if isinstance(default, list | tuple):
        items = list(value) if isinstance(value, list | tuple) else [value]
        element = default[0] if default else ""
        return [_scalar(key, element, v) for v in items]
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise ConfigError(f"--{key} takes one value (got {len(value)}: {' '.join(map(str, value))})")
        value = value[0]
    return _scalar(key, default, value)


class _Tokens(list):
    """Values typed after one command-line flag."""


def _set_key(data: dict, defaults: Mapping[str, Any], key: str, value: Any, source: str = "") -> None:
    if _REGEX_CHARS.search(key):
        try:
            pattern = re.compile(key)
        except re.error as exc:
            raise ConfigError(f"{source}--{key} is neither a config key nor a valid pattern ({exc})") from None
        matches = [k for k in _flatten_mapping(defaults) if pattern.fullmatch(k)]
        if not matches:
            raise ConfigError(f"{source}the pattern --{key} matches no config key")
        for match in matches:
            _set_key(data, defaults, match, value, source)
        return
    try:
        key = _resolve_key(defaults, key)
        default = _node(defaults, key)
        if isinstance(value, Mapping) and not isinstance(default, Mapping | None):
            raise ConfigError(f"--{key} expects {_describe(default)}, not a mapping")
        coerced = _coerce(key, default, value)
    except ConfigError as exc:
        raise ConfigError(f"{source}{exc}") from None
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = coerced


ENGINE_PREFIX = "engine:"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@cache
def parse_interval(text: str) -> tuple[float, bool, float, bool]:
    """``"[0, 1)"`` -> ``(0.0, True, 1.0, False)``: low, low included, high, high included."""
    low, high = text[1:-1].split(",")
    return float(low), text[0] == "[", float(high), text[-1] == "]"


def in_interval(value: float, text: str) -> bool:
    """Whether ``value`` is finite and lies in the interval ``text`` (``"[0, 1)"``)."""
    low, low_in, high, high_in = parse_interval(text)
    inside = (low <= value if low_in else low < value) and (value <= high if high_in else value < high)
    return inside and math.isfinite(value)


def range_of(key: str) -> str | None:
    """The declared range (:data:`RANGES`) of a numeric key, e.g. ``"[0, 1)"``, or None."""
    return next((text for pattern, text in RANGES.items() if fnmatch.fnmatchcase(key, pattern)), None)


def _check_range(key: str, value: float) -> None:
    text = range_of(key)
    if text is None:
        if not math.isfinite(value):
            raise ConfigError(f"--{key} must be a finite number (got {value})")
        return
    if not in_interval(value, text):
        raise ConfigError(f"--{key} must be a finite number in {text} (got {value})")


def _finish(data: dict) -> Config:
    if not data.get("logdir"):
        data["logdir"] = "runs/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", str(data["task"])).strip("_")
    # Paths are made absolute here, once, and stored so: the run can be resumed, certified and reported from
    # any directory (and orbax refuses relative paths).
    data["logdir"] = str(absolute_path(data["logdir"]))
    if Path(data["logdir"]).exists() and not Path(data["logdir"]).is_dir():
        raise ConfigError(f"--logdir {data['logdir']} is a file; accepted: a directory (new, or holding a run)")
    data["task"] = absolute_task(str(data["task"]))
    flat = _flatten_mapping(data)
    for key, choices in CHOICES.items():
        if flat.get(key) not in choices:
            raise ConfigError(f"--{key} must be one of {', '.join(choices)} (got {flat.get(key)!r})")
    for key, value in flat.items():
        if key in NUMERIC_NULLABLE and value is not None and (isinstance(value, bool) or not _is_number(value)):
            raise ConfigError(f"--{key} expects a number or null (got {value!r})")
        for item in value if isinstance(value, tuple | list) else (value,):
            if _is_number(item):
                _check_range(key, item)
    for low, high in (("retnorm.perclo", "retnorm.perchi"), ("actor.minstd", "actor.maxstd")):
        if flat[low] > flat[high]:
            raise ConfigError(f"--{low} ({flat[low]}) must not exceed --{high} ({flat[high]})")
    if env_family(data["task"]) == "grid":  # the grid's options are typed by the grid itself (cheap to check)
        from .envs.errors import EnvConfigError
        from .envs.grid import PRESETS, check_options

        options = {k: v for k, v in data["env"]["grid"].items() if v is not None}
        try:
            check_options(data["task"], **options)
        except EnvConfigError as exc:
            raise ConfigError(f"--env.grid: {exc}" if data["task"] in PRESETS else str(exc)) from None
    if data["replay"]["batch_length"] * data["envs"]["amount"] > data["replay"]["size"]:
        raise ConfigError(
            f"--replay.size ({data['replay']['size']}) must hold at least one sequence of --replay.batch_length "
            f"({data['replay']['batch_length']}) per env (--envs.amount {data['envs']['amount']})"
        )
    return Config(data)


# ------------------------------------------------------------------------------------------ public API


def resolve(
    configs: Sequence[str] = (),
    overrides: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
    *,
    path: str | Path | None = None,
) -> Config:
    """Merge ``defaults``, the named blocks and the dotted overrides into a validated :class:`Config`.

    Parameters
    ----------
    configs : sequence of str
        Block names, applied left to right.
    overrides : mapping or sequence of (key, value)
        Dotted keys (or regular expressions over them) with Python values or command-line tokens (strings,
        lists of strings); applied in order after the blocks.
    path : str or Path, optional
        Another blocks file instead of the packaged ``configs.yaml``.

    Raises
    ------
    ConfigError
        Unknown block or key, wrong type, value outside its choices or range.
    """
    blocks = load_blocks(path)
    data = copy.deepcopy(blocks["defaults"])
    for name in configs:
        _apply_block(data, blocks, name)
    items = list(overrides.items() if isinstance(overrides, Mapping) else (overrides or []))
    for key, value in items:
        _set_key(data, blocks["defaults"], key, value)
    return _finish(data)


def parse_train_args(argv: Sequence[str], *, path: str | Path | None = None) -> Config:
    """Parse ``train``'s arguments: ``--configs a b`` and dotted overrides, each flag taking one or more values.

    Examples
    --------
    >>> cfg = parse_train_args(["--configs", "atari", "debug", "--run.steps", "1e7",
    ...                         "--env.atari.labels", "death", "early-surface", "--logdir", "runs/x"])
    >>> cfg.run.steps, cfg.env.atari.labels, cfg.rssm.deter
    (10000000, ('death', 'early-surface'), 32)

    Values run until the next token that starts with ``--`` (so negative numbers are values); ``--key=value``
    is accepted too, and ``--configs`` also takes comma-separated names.
    """
    configs: list[str] = []
    overrides: list[tuple[str, Any]] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument {token!r}; options look like --key value (e.g. --run.steps 1e7)")
        name, eq, inline = token[2:].partition("=")
        values = _Tokens([inline] if eq else [])
        i += 1
        if not eq:
            while i < len(tokens) and not tokens[i].startswith("--"):
                values.append(tokens[i])
                i += 1
        if name == "configs":
            names = [n for v in values for n in v.split(",") if n]
            if not names:
                raise ConfigError(f"--configs needs block names; accepted: {', '.join(block_names(path))}")
            configs.extend(names)
        elif not values:
            overrides.append((name, _BareFlag()))
        else:
            overrides.append((name, values))
    defaults = load_blocks(path)["defaults"]
    resolved: list[tuple[str, Any]] = []
    for name, values in overrides:
        if isinstance(values, _BareFlag):  # a bare flag means True for a bool key; anything else needs a value
            default = None if _REGEX_CHARS.search(name) else _node(defaults, _resolve_key(defaults, name))
            if not isinstance(default, bool):
                raise ConfigError(f"--{name} needs a value")
            values = True
        resolved.append((name, values))
    config = resolve(configs, resolved, path=path)
    family = env_family(config.task)
    for name, _ in resolved:  # an option of another family's environment would be silently unused
        parts = name.replace("-", "_").split(".")
        if parts[0] == "env" and len(parts) > 1 and parts[1] != family and not _REGEX_CHARS.search(name):
            raise ConfigError(f"--{name} sets an option of {parts[1]} tasks, but the task is {config.task!r}")
    return config


class _BareFlag:
    """Marker for a flag given without a value."""


SIZE_BLOCKS = ("debug", "gridnet", "small", "medium", "large", "xlarge")
ARCHITECTURE = ("rssm", "encoder", "decoder", "heads", "actor", "critic")  # the keys that name a model size


def size_name(config: Config) -> str:
    """The model-size block (:data:`SIZE_BLOCKS`) whose every key the config holds, else ``custom``."""
    blocks, flat = load_blocks(), config.flat()
    for name in SIZE_BLOCKS:
        sized = {k: v for k, v in _flatten_mapping(blocks[name]).items() if k.split(".")[0] in ARCHITECTURE}
        if all(_freeze(v) == flat.get(k) for k, v in sized.items()):
            return name
    return "custom"


def summary_line(config: Config) -> str:
    """One line a user checks before a long run: agent, task, model size, steps, environments, run directory."""
    c = config
    size = f"size {size_name(c)} (rssm.deter {c.rssm.deter})" if c.agent in ("ambs", "dreamer", "lagrangian") else ""
    return (
        f"{c.agent} on {c.task}: {size + ', ' if size else ''}{c.run.steps:,} steps, {c.envs.amount} "
        f"environment{'s' if c.envs.amount > 1 else ''}, seed {c.seed}, run directory {c.logdir}"
        + (f", split over {c.jax.devices or 'all'} {c.jax.platform} devices" if c.jax.devices != 1 else "")
    )


def absolute_task(task: str) -> str:
    """``engine:PATH.yaml`` with PATH made absolute; every other task name unchanged."""
    if task.startswith(ENGINE_PREFIX) and task != ENGINE_PREFIX:
        return ENGINE_PREFIX + str(absolute_path(task[len(ENGINE_PREFIX) :]))
    return task


def env_family(task: str) -> str:
    """The ``env.<family>`` options block a task reads: ``grid``, ``atari`` or ``safetygym`` (also ``engine:``)."""
    if task == "grid" or task.startswith("grid_"):
        return "grid"
    if task.startswith("atari_"):
        return "atari"
    if task.startswith(("safetygym_", "engine:")):
        return "safetygym"
    raise ConfigError(f"unknown task {task!r}; task names start with grid, atari_, safetygym_ or engine:")


def env_options(config: Config) -> dict[str, Any]:
    """Keyword options for ``make_env(config.task, **options)``: the task family's block without null values."""
    block = config.env[env_family(config.task)]
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in block.to_dict().items() if v is not None}
