"""One source for options (#14): RunConfig's fields carry their flag, help, ``--help`` section and
checks; the Click options of ``train`` and ``tune`` are made from them (cli/config_options.py)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import click
import pytest
import yaml

from kerasdl.config import GROUPS, KEY_ALIASES, TASKS, RunConfig
from kerasdl.errors import KerasdlUsageError, UnknownNameError

from clihelpers import assert_one_line_error

FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
# Fields deliberately without a `train` option, with the reason (none today; a field added with
# opt(no_flag="...") must say why here too).
NOT_FLAGS: dict[str, str] = {}
# `tune` options named as a RunConfig field that mean something else there.
TUNE_OWN = {"name": "the tune directory's name, not a trial run's"}


def default_of(name):
    f = FIELDS[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def test_every_field_has_its_train_option_with_the_same_default():
    from kerasdl.cli.config_options import ConfigOption, to_field
    from kerasdl.cli.train import train_command

    params = {p.name: p for p in train_command.params}
    for name, f in FIELDS.items():
        if f.metadata.get("no_flag"):
            assert NOT_FLAGS.get(name), f"{name} has no option: list it in NOT_FLAGS with the reason"
            assert name not in params
            continue
        assert name in params, f"RunConfig.{name} has no `kerasdl train` option"
        param = params[name]
        assert isinstance(param, ConfigOption) and param.group == f.metadata["group"], name
        assert to_field(name, param.default) == default_of(name), name
        assert param.help and f.metadata["help"] in param.help, name
        flag = param.opts[0].lstrip("-").replace("-", "_")
        assert KEY_ALIASES.get(flag, flag) == name, (name, param.opts)  # the flag name is a config key too
    assert set(NOT_FLAGS) == {n for n, f in FIELDS.items() if f.metadata.get("no_flag")}
    # The command's own options are not fields; every other option is one.
    assert {n for n in params if n not in FIELDS} == {"config_file", "resume_dir", "overwrite"}


def test_the_short_aliases_and_flag_spellings_stay():
    from kerasdl.cli.train import train_command

    opts = {p.name: p.opts + p.secondary_opts for p in train_command.params}
    assert {"-m", "--model"} <= set(opts["model"]) and {"-d", "--dataset"} <= set(opts["dataset"])
    assert {"-e", "--epochs"} <= set(opts["epochs"]) and {"-b", "--batch-size"} <= set(opts["batch_size"])
    assert opts["learning_rate"] == ["--lr"] and opts["min_learning_rate"] == ["--min-lr"]
    assert opts["model_options"] == ["--model-opt"] and opts["task_options"] == ["--task-opt"]
    assert opts["calibrate"] == ["--calibrate", "--no-calibrate"] and opts["diagnostics"] == ["--diagnostics"]
    assert KEY_ALIASES == {"lr": "learning_rate", "min_lr": "min_learning_rate", "model_opt": "model_options",
                           "task_opt": "task_options"}


def test_field_metadata_is_complete():
    for name, f in FIELDS.items():
        meta = f.metadata
        assert meta.get("help") and meta.get("group") in GROUPS, name
        if meta.get("kind"):
            assert default_of(name) is None or default_of(name) in meta["choices"], name
        if meta.get("check"):
            RunConfig(**{name: default_of(name)}).validate()


def test_tune_shares_the_fields_it_shares():
    from kerasdl.cli.config_options import ConfigOption, flag_decls
    from kerasdl.cli.train import train_command
    from kerasdl.cli.tune import tune_command

    train = {p.name: p for p in train_command.params}
    shared = [p for p in tune_command.params if p.name in FIELDS and p.name not in TUNE_OWN]
    assert {p.name for p in shared} >= {"model", "dataset", "epochs", "seed", "output_dir", "task", "task_options"}
    for param in shared:
        assert isinstance(param, ConfigOption), param.name  # made from the field, not written again
        assert param.opts + param.secondary_opts == train[param.name].opts + train[param.name].secondary_opts
        assert param.opts[0] == flag_decls(param.name)[0]
        assert type(param.type) is type(train[param.name].type) and param.multiple == train[param.name].multiple
    tune = {p.name: p.default for p in shared}
    assert (tune["model"], tune["dataset"], tune["epochs"], tune["seed"]) == ("mlp", "digits", 10, 0)


def test_train_help_is_grouped(cli_inprocess, tmp_path):
    text = cli_inprocess("train", "--help", cwd=tmp_path).stdout
    titles = [f"{g} options:" for g in GROUPS]
    at = [text.index(t) for t in titles]
    assert at == sorted(at), "sections out of GROUPS order"
    assert text.index("Options:") < at[0] and text.index("Examples:") > at[-1]
    from kerasdl.cli.train import train_command

    starts = at + [text.index("Examples:")]
    for param in train_command.params:
        if param.name in FIELDS:  # each option sits in its field's section
            i = GROUPS.index(FIELDS[param.name].metadata["group"])
            assert f" {param.opts[0]} " in text[starts[i]:starts[i + 1]].replace("\n", " "), param.name
    flat = " ".join(text.split())
    assert "[default: 0.001]" in flat and "[default: calibrate]" in flat and "[default: no-jit]" in flat


# ---- task and task_options --------------------------------------------------------------------
def test_task_accepts_auto_and_the_current_problem_types():
    assert RunConfig().task == "auto" and RunConfig().task_options == {}
    for task in TASKS:
        RunConfig(task=task).validate()
    with pytest.raises(UnknownNameError, match="classification"):
        RunConfig(task="clasification").validate()
    with pytest.raises(KerasdlUsageError, match="unknown task option 'noise'"):
        RunConfig(task="classification", task_options={"noise": 0.3}).validate()
    with pytest.raises(KerasdlUsageError, match="task_options must be a mapping"):
        RunConfig(task_options=["noise=0.3"]).validate()


@pytest.mark.parametrize("args,needles", [
    (["--task", "regresion"], ["unknown task 'regresion'", "regression"]),
    (["--task-opt", "noise=0.3"], ["unknown task option 'noise'"]),
    (["--task", "segmentation", "--task-opt", "beta=2"], ["unknown task option 'beta'", "segmentation"]),
    (["--task-opt", "noise"], ["--task-opt", "expected KEY=VALUE"]),
])
def test_bad_task_values_are_one_line_exit_2(cli_inprocess, tmp_path, args, needles):
    assert_one_line_error(cli_inprocess("train", *args, cwd=tmp_path), *needles)
    assert not (tmp_path / "runs").exists()


def test_task_errors_come_before_tensorflow(tmp_path):
    script = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from kerasdl.cli.main import cli
        for args in (["--task", "vea"], ["--task-opt", "noise=0.3"], ["--model", "nope", "--task", "auto"]):
            result = CliRunner().invoke(cli, ["train", *args])
            assert result.exit_code == 2, result.output
        assert "tensorflow" not in sys.modules, "TensorFlow was imported before the value check"
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_task_options_parse_like_model_options(cli_inprocess, tmp_path):
    from kerasdl.cli.config_options import to_field

    assert to_field("task_options", ("noise=0.3", "sizes=[64,32]", "kind=gauss")) == {
        "noise": 0.3, "sizes": [64, 32], "kind": "gauss"}
    assert to_field("task_options", ("noise=0.3",)) == to_field("model_options", ("noise=0.3",))
    (tmp_path / "run.yaml").write_text("task: regression\ntask_opt: {}\n")
    config = RunConfig.from_yaml(str(tmp_path / "run.yaml"), {"task": "auto"})  # the command line wins
    assert (config.task, config.task_options) == ("auto", {})


def test_an_old_config_yaml_still_replays(tmp_path):
    old = RunConfig(model="mlp", dataset="digits", epochs=3, name="old").to_dict()
    del old["task"], old["task_options"]  # a config.yaml written before these fields
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    config = RunConfig.from_yaml(str(tmp_path / "config.yaml"))
    assert (config.task, config.task_options, config.model, config.epochs) == ("auto", {}, "mlp", 3)
    assert list(config.to_dict())[:len(old)] == list(old)  # the old keys keep their order; new ones follow
    assert RunConfig.from_mapping(config.to_dict()) == config


def test_option_types_come_from_the_field_checks():
    from kerasdl.cli.train import train_command

    params = {p.name: p for p in train_command.params}
    assert isinstance(params["epochs"].type, click.IntRange) and params["epochs"].type.min == 1
    assert isinstance(params["patience"].type, click.IntRange) and params["patience"].type.min == 0
    assert isinstance(params["pretrained"].type, click.Choice)
    assert params["model_options"].multiple and params["task_options"].multiple
    assert params["export_dir"].default == "saved_models" and params["download"].default is None
