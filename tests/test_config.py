"""Config blocks, dotted overrides, typing, one-line errors and the YAML round trip."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from ambs_verify.config import (
    NUMERIC_NULLABLE,
    Config,
    ConfigError,
    _flatten_mapping,
    block_names,
    env_options,
    load_blocks,
    parse_train_args,
    range_of,
    resolve,
)
from ambs_verify.rollout.agents import agent_config


def test_familiar_command_shape(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = (
        "--configs atari xlarge --task atari_seaquest --env.atari.labels death early-surface out-of-oxygen "
        "--run.steps 1e7 --logdir runs/seaquest"
    ).split()
    cfg = parse_train_args(argv)
    assert cfg.run.steps == 10_000_000 and isinstance(cfg.run.steps, int)
    assert cfg.env.atari.labels == ("death", "early-surface", "out-of-oxygen")
    # Paths are made absolute once, here, against the directory the command runs in.
    assert cfg.task == "atari_seaquest" and cfg.logdir == str(tmp_path / "runs" / "seaquest")
    assert cfg.envs.amount == 8 and cfg.run.train_ratio == 64  # from the atari block
    assert cfg.rssm.deter == 4096 and cfg.heads.units == 1024
    assert env_options(cfg)["labels"] == ["death", "early-surface", "out-of-oxygen"]


def test_blocks_merge_left_to_right():
    assert resolve(["small", "debug"]).rssm.deter == 32
    assert resolve(["debug", "small"]).rssm.deter == 512
    assert resolve(["debug", "small"]).rssm.stoch == 4  # small leaves stoch alone


@pytest.mark.parametrize(
    ("size", "deter", "cnn", "units", "layers"),
    [
        ("small", 512, 32, 512, 2),
        ("medium", 1024, 48, 640, 3),
        ("large", 2048, 64, 768, 4),
        ("xlarge", 4096, 96, 1024, 5),
    ],
)
def test_size_presets_follow_spec_table(size, deter, cnn, units, layers):
    cfg = resolve([size])
    assert (cfg.rssm.deter, cfg.encoder.cnn_depth, cfg.decoder.cnn_depth) == (deter, cnn, cnn)
    assert cfg.rssm.units == cfg.heads.units == cfg.actor.units == cfg.critic.units == units
    assert cfg.heads.layers == cfg.actor.layers == cfg.critic.layers == layers
    assert cfg.encoder.mlp_units == 1024  # the reference's size regexes do not touch the vector MLPs


def test_debug_and_quickstart_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    debug = resolve(["debug"])
    assert (debug.replay.batch_size, debug.replay.batch_length, debug.shield.samples) == (8, 12, 64)
    assert (debug.rssm.deter, debug.rssm.stoch, debug.rssm.classes) == (32, 4, 4)
    quick = resolve(["quickstart"])
    assert quick.task == "grid" and quick.rssm.deter == 64 and quick.run.steps <= 10_000
    assert quick.logdir == str(tmp_path / "runs" / "quickstart")


def test_paths_are_absolute_and_survive_the_yaml_round_trip(tmp_path, monkeypatch):
    """logdir (given, defaulted or with ~) and an engine task's file are stored absolute; reloading the stored
    config elsewhere keeps them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve(overrides={"logdir": "~/runs/x"}).logdir == str(tmp_path / "home" / "runs" / "x")
    assert resolve(overrides={"task": "grid_large"}).logdir == str(tmp_path / "runs" / "grid_large")
    cfg = resolve(overrides={"task": "engine:layouts/point.yaml", "logdir": "../out/./r"})
    assert cfg.task == f"engine:{tmp_path / 'layouts' / 'point.yaml'}"
    assert cfg.logdir == str(tmp_path.parent / "out" / "r")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = Config.from_yaml(cfg.to_yaml())
    assert (again.task, again.logdir) == (cfg.task, cfg.logdir)


def test_every_block_resolves_alone():
    for name in block_names():
        resolve([name])


def test_override_types():
    cfg = parse_train_args(
        [
            "--plpg",
            "--copt",
            "false",
            "--normalise_ret=False",
            "--shield_eps",
            "0.05",
            "--env.grid.reward_goal",
            "-3",
            "--env.grid.slip",
            "0.2",
            "--env.grid.hazards",
            "[[1, 1]]",
            "--configs=debug,small",
            "--run.train-ratio",
            "16",
        ]
    )
    assert cfg.penalty.plpg is True and cfg.penalty.copt is False and cfg.normalise_ret is False
    assert cfg.shield.eps == 0.05 and cfg.env.grid.reward_goal == -3 and cfg.run.train_ratio == 16
    assert cfg.env.grid.slip == 0.2 and cfg.env.grid.hazards == ((1, 1),)
    assert cfg.rssm.deter == 512
    atari = parse_train_args(["--task", "atari_pong", "--env.atari.size", "84", "84"])
    assert atari.env.atari.size == (84, 84)
    with pytest.raises(ConfigError, match=r"--env.atari.size sets an option of atari tasks, but the task is 'grid'"):
        parse_train_args(["--env.atari.size", "84", "84"])
    assert env_options(resolve(overrides={"env.grid.slip": 0.3})) == {"slip": 0.3}


def test_regex_override_matches_like_the_reference():
    cfg = parse_train_args(["--.*\\.units", "64"])
    assert cfg.rssm.units == cfg.heads.units == cfg.actor.units == cfg.critic.units == 64
    assert cfg.encoder.mlp_units == 1024


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--configs", "nope"], "unknown config block 'nope'; accepted: debug"),
        (["--run.stepz", "3"], "unknown config key 'run.stepz' (did you mean run.steps?); keys under run: steps"),
        (["--run.steps", "abc"], "--run.steps expects an integer"),
        (["--run.steps", "1.5"], "--run.steps expects an integer"),
        (["--plpg", "maybe"], "--penalty.plpg expects True or False"),
        (["--shield_eps", "x"], "--shield.eps expects a number"),
        (["--run", "3"], "run is a group of keys"),
        (["--run.steps"], "--run.steps needs a value"),
        (["--seed", "1", "2"], "--seed takes one value"),
        (["positional"], "unexpected argument 'positional'"),
        (["--jax.precision", "float64"], "--jax.precision must be one of float32, bfloat16, float16"),
        (["--safety_critic_type", "vfunction"], "--safety_critic_type must be one of td3vfunction (got 'vfunction')"),
        (["--envs.amount", "0"], "--envs.amount must be a finite number in [1, inf) (got 0)"),
        (["--shield_candidates", "-1"], "--shield.candidates must be a finite number in [0, inf) (got -1)"),
        (["--shield_eps", "nan"], "--shield.eps must be a finite number in [0, 1) (got nan)"),
        (["--shield_eps", "2"], "--shield.eps must be a finite number in [0, 1) (got 2.0)"),
        (["--model_opt.lr", "-1"], "--model_opt.lr must be a finite number in (0, inf) (got -1.0)"),
        (["--rssm.classes", "0"], "--rssm.classes must be a finite number in [1, inf) (got 0)"),
        (["--shield_bound_delta", "0"], "--shield.bound_delta must be a finite number in (0, 1) (got 0.0)"),
        (["--retnorm.perclo", "96"], "--retnorm.perclo (96.0) must not exceed --retnorm.perchi (95.0)"),
        (["--x\\.nothing.*", "1"], "matches no config key"),
    ],
)
def test_one_line_errors(argv, message):
    with pytest.raises(ConfigError) as info:
        parse_train_args(argv)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_block_value_names_the_block(tmp_path):
    path = tmp_path / "configs.yaml"
    blocks = load_blocks()
    blocks["broken"] = {"run": {"steps": "many"}}
    import yaml

    path.write_text(yaml.safe_dump(blocks))
    with pytest.raises(ConfigError, match=r"block 'broken': --run\.steps expects an integer"):
        resolve(["broken"], path=path)


def test_config_is_immutable_and_round_trips_yaml():
    cfg = parse_train_args(["--configs", "atari", "--env.atari.labels", "death", "--run.steps", "1e7"])
    with pytest.raises(AttributeError):
        cfg.seed = 3
    with pytest.raises(TypeError):
        cfg["seed"] = 3
    again = Config.from_yaml(cfg.to_yaml())
    assert again == cfg and hash(again) == hash(cfg)
    assert again.flat()["env.atari.labels"] == "death"  # one value for a null-default key stays a scalar
    assert cfg.replace({"run.steps": "5e3"}).run.steps == 5000 and cfg.run.steps == 10_000_000
    with pytest.raises(ConfigError, match="unknown config key"):
        Config.from_yaml("run:\n  stepz: 3\n")


def test_defaults_hold_no_numbers_as_text():
    # YAML 1.1 reads `1e-4` as a string; every numeric default must be written so it parses as a number.
    import re

    for key, value in resolve().flat().items():
        if isinstance(value, str):
            assert not re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value), key


def test_log_and_save_every_are_steps():
    cfg = resolve()
    assert isinstance(cfg.run.log_every, int) and isinstance(cfg.run.save_every, int)
    assert resolve(overrides={"run.log_every": "1e3"}).run.log_every == 1000
    with pytest.raises(ConfigError, match="expects an integer"):
        resolve(overrides={"run.save_every": "300s"})


def test_the_reference_spellings_are_aliases_of_the_blocks():
    """The seeds' flat keys keep working on the command line, in overrides and in stored configs, and land in the
    block whose dataclass they build (one name from the command line to the code)."""
    from ambs_verify.config import ALIASES, Config, canonical_key, migrate

    argv = ["--configs", "atari", "xlarge", "--penalty_coeff", "0.5", "--plpg", "True", "--copt", "True"]
    argv += [
        "--normalise_ret",
        "False",
        "--penl_critic_type",
        "vfunction",
        "--env.atari.labels",
        "death",
        "early-surface",
    ]
    argv += ["--shield_horizon", "20", "--safety_critic_opt.lr", "1e-3"]
    cfg = parse_train_args(argv)
    assert (cfg.penalty.penalty_coeff, cfg.penalty.plpg, cfg.penalty.copt) == (0.5, True, True)
    assert cfg.normalise_ret is False and cfg.penalty.penl_critic_type == "vfunction"
    assert cfg.env.atari.labels == ("death", "early-surface") and cfg.rssm.deter == 4096
    assert cfg.shield.threshold_horizon == 20 and cfg.safety.safety_critic_opt.lr == 1e-3
    assert canonical_key("shield_samples") == "shield.samples" and canonical_key("run.steps") == "run.steps"
    old = {"shield_samples": 16, "shielding": False, "safety_critic_opt": {"lr": 0.5}, "seed": 3}
    assert migrate(old) == {
        "shield": {"samples": 16},
        "safety": {"shielding": False, "safety_critic_opt": {"lr": 0.5}},
        "seed": 3,
    }
    new = resolve().to_dict()
    flat_old = {k: v for k, v in new.items() if k not in ("shield", "safety", "penalty", "lagrangian")}
    for alias, key in ALIASES.items():
        block, field = key.split(".")
        flat_old[alias] = new[block][field]
    flat_old["shield_samples"] = 7
    assert Config.from_yaml(yaml.safe_dump(flat_old)).shield.samples == 7  # a config.yaml from before the blocks


def test_the_agent_dataclasses_mirror_the_config_blocks():
    """One source of defaults and one name per setting: the agents' config dataclasses declare no default, and each
    one's fields are its ``configs.yaml`` block's keys, values carried over unchanged (``Cls(**block)``)."""
    from ambs_verify.agents import config as A
    from ambs_verify.agents.baselines import AGENTS
    from ambs_verify.agents.shield import ShieldConfig
    from ambs_verify.rollout.agents import shield_config

    baselines = {name: config_cls for name, (_, config_cls) in AGENTS.items()}
    classes = [getattr(A, name) for name in A.__all__ if isinstance(getattr(A, name), type)] + [ShieldConfig]
    classes += list(baselines.values())
    for cls in classes:
        defaulted = [f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING]
        defaulted += [f.name for f in dataclasses.fields(cls) if f.default_factory is not dataclasses.MISSING]
        assert not defaulted, f"{cls.__name__} declares defaults for {defaulted}; they belong in configs.yaml"
    cfg = resolve(["quickstart"], {"retnorm.perclo": 7.0, "loss_scales.rep": 0.3, "penalty.sigmoid_scale": 4.0})
    agent = dataclasses.asdict(agent_config(cfg))
    keys = cfg.to_dict()
    for block in ("rssm", "encoder", "decoder", "heads", "loss_scales", "model_opt"):
        assert agent["world_model"][block] == keys[block], block
    for block in ("actor", "critic", "retnorm", "actor_opt", "critic_opt", "loss_scales", "imag_horizon", "actent"):
        assert agent["actor_critic"][block] == keys[block], block
    resolved = {"safety": {"cost_val"}, "penalty": {"threshold_horizon"}, "lagrangian": {"enabled"}}
    for block, given in resolved.items():
        mirrored = {k: v for k, v in keys[block].items() if k not in given}
        assert {k: v for k, v in agent[block].items() if k not in given} == mirrored, block
    assert agent["penalty"]["threshold_horizon"] == cfg.shield.threshold_horizon
    shield = dataclasses.asdict(shield_config(cfg))
    assert {k: shield[k] for k in keys["shield"]} == keys["shield"]
    assert shield["imag_horizon"] == cfg.imag_horizon and shield["shield_bootstrap"] == cfg.safety.shield_bootstrap
    # every shared baselines key but the data preparation's (a block key no agent reads would be silently dropped),
    # and the agent's own block
    shared = {k for k, v in keys["baselines"].items() if not isinstance(v, dict)} - {"atari_preprocessing"}
    for name, config_cls in baselines.items():
        fields = {f.name for f in dataclasses.fields(config_cls)}
        assert fields == shared | set(keys["baselines"][name]), name


def test_agent_config_mapping():
    cfg = resolve(["quickstart"], {"shielding": False, "horizon": 100.0, "jax.precision": "bfloat16"})
    agent = agent_config(cfg)
    assert agent.world_model.rssm.deter == 64 and agent.world_model.heads.units == 64
    assert agent.world_model.decoder.vector_dist == "onehot"  # the grid observes its one-hot cell
    assert agent.actor_critic.horizon == 100.0 and agent.safety.shielding is False
    assert agent.safety.cost_val == 1.0  # the grid's own cost_val
    assert agent.compute_dtype == "bfloat16" and (agent.batch_size, agent.batch_length) == (8, 12)
    assert dataclasses.is_dataclass(agent)
    assert agent_config(resolve(["atari"])).safety.cost_val == 10.0


def test_shield_candidates_reach_the_shield():
    from ambs_verify.rollout.agents import shield_config

    assert shield_config(resolve(["quickstart"])).candidates == 0  # the paper judges the policy
    assert shield_config(resolve(["quickstart"], {"shield_candidates": 4})).candidates == 4


def test_every_numeric_key_declares_its_range():
    """Validation at the boundary covers every number a user can set: a key without a declared range would take
    any finite value."""
    numeric = [
        key
        for key, value in _flatten_mapping(load_blocks()["defaults"]).items()
        if any(
            isinstance(v, int | float) and not isinstance(v, bool)
            for v in (value if isinstance(value, list) else [value])
        )
    ]
    assert len(numeric) > 100
    assert [key for key in (*numeric, *NUMERIC_NULLABLE) if range_of(key) is None] == []
    # every block's own values lie in their ranges (a block that breaks its own range could never be used)
    for name in block_names():
        resolve([name])
