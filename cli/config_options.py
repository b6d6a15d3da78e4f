"""Click options made from RunConfig's fields (kerasdl/config.py): one source for each option's
name, type, default, help text and ``--help`` section. Imports no TensorFlow."""

from __future__ import annotations

import dataclasses
from typing import Any

import click
from click.core import ParameterSource

from kerasdl.config import GROUPS, RunConfig, field_type

FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
OTHER = "Options"  # the section of a command's own options (--config, --resume, --help, ...)


class ConfigOption(click.Option):
    """A click option that knows its ``--help`` section."""

    def __init__(self, *args, group: str = OTHER, **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group


class GroupedCommand(click.Command):
    """A command whose ``--help`` lists its options in sections: the command's own options, then
    RunConfig's groups in :data:`kerasdl.config.GROUPS` order."""

    def format_options(self, ctx, formatter):
        sections: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(param, "group", OTHER), []).append(record)
        for title in (OTHER, *GROUPS):
            if sections.get(title):
                with formatter.section(title if title == OTHER else f"{title} options"):
                    formatter.write_dl(sections[title])


def field_default(name: str) -> Any:
    f = FIELDS[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def flag_decls(name: str) -> list[str]:
    """The option's names: ``--flag`` (bool fields ``--x/--no-x``), then the short alias."""
    f = FIELDS[name]
    dash = name.replace("_", "-")
    flag = f.metadata.get("flag") or (f"--{dash}/--no-{dash}" if field_type(f) == "bool" else f"--{dash}")
    return [flag] + ([f.metadata["short"]] if f.metadata.get("short") else [])


def _shown(name: str, default: Any, own: bool = True) -> str | None:
    """The ``[default: ...]`` text of an option (``own``: the field's default, not a command's)."""
    meta = FIELDS[name].metadata
    if own and meta.get("shown"):
        return meta["shown"]
    if default is None or default == {} or default == ():
        return None
    if isinstance(default, bool):
        flag = flag_decls(name)[0]
        if "/" not in flag:
            return None  # a lone flag: off unless given
        on, off = flag.split("/")
        return (on if default else off).lstrip("-")
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def config_option(name: str, *, default: Any = dataclasses.MISSING, help: str | None = None):
    """The click option of RunConfig field ``name``; the parameter is named as the field. A
    command may give its own default and help (``tune --epochs`` counts per trial)."""
    f = FIELDS[name]
    meta = f.metadata
    if meta.get("no_flag"):
        raise ValueError(f"RunConfig.{name} has no option: {meta['no_flag']}")
    if default is dataclasses.MISSING:
        default = field_default(name)
    kind, check = field_type(f), meta.get("check")
    text = help if help is not None else meta["help"]
    shown = _shown(name, default, own=default == field_default(name))
    kwargs: dict[str, Any] = {"default": default, "metavar": meta.get("metavar")}
    if kind == "bool":
        kwargs["is_flag"] = True
        if "/" not in flag_decls(name)[0]:
            kwargs["default"] = bool(default)
    elif kind == "dict":
        kwargs.update(multiple=True, default=tuple(f"{k}={v}" for k, v in default.items()))
    elif meta.get("path"):
        kwargs["type"] = click.Path(file_okay=False) if meta["path"] == "dir" else click.Path()
    elif meta.get("choices") and not meta.get("kind"):
        kwargs["type"] = click.Choice(list(meta["choices"]))
    elif kind == "int":
        kwargs["type"] = {"positive": click.IntRange(min=1), "nonnegative": click.IntRange(min=0)}.get(check, int)
    elif kind == "float":
        kwargs["type"] = float
    if shown:
        text = f"{text}  [default: {shown}]"
    return click.option(*flag_decls(name), name, cls=ConfigOption, group=meta["group"], help=text, **kwargs)


def config_options(names=None):
    """Decorator: the options of these RunConfig fields (default: every field), in field order."""
    names = [f for f in FIELDS if not FIELDS[f].metadata.get("no_flag")] if names is None else list(names)

    def decorate(command):
        for name in reversed(names):  # click lists options in decorator order, top first
            command = config_option(name)(command)
        return command

    return decorate


# ---- from the command line's strings to field values ----------------------------------------------
def parse_key_values(values, flag: str) -> dict:
    """``KEY=VALUE`` items (``--model-opt``, ``--task-opt``) into a mapping; values are read as YAML."""
    import yaml

    opts = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag)
        try:
            opts[key] = yaml.safe_load(raw)  # "0.2" -> 0.2, "[64,32]" -> [64, 32], "relu" -> "relu"
        except yaml.YAMLError:
            raise click.BadParameter(f"cannot parse value of {item!r}", param_hint=flag) from None
    return opts


def parse_image_size(value: str) -> list:
    try:
        return [int(v) for v in value.replace("x", ",").split(",")]
    except ValueError:
        raise click.BadParameter(f"expected H,W, got {value!r}", param_hint="--image-size") from None


def parse_classes(value: str) -> list:
    return [int(c) if c.strip().lstrip("-").isdigit() else c.strip() for c in value.split(",") if c.strip()]


def to_field(name: str, value: Any) -> Any:
    """An option's value as its RunConfig field holds it."""
    kind = field_type(FIELDS[name])
    if kind == "dict":
        return parse_key_values(value, flag_decls(name)[0])
    if value is None:
        return None
    if name == "image_size":
        return parse_image_size(value)
    if kind == "list":
        return parse_classes(value)
    return value


def given_fields(ctx: click.Context, options: dict) -> dict:
    """The RunConfig fields given on the command line (not defaulted), as field values: these
    override a --config file's values."""
    return {name: to_field(name, value) for name, value in options.items()
            if name in FIELDS and ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
