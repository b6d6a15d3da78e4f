"""Root command group: ``kerasdl``.

Exit codes (a contract scripts rely on): 0 success, 2 bad usage or bad input (one line on stderr,
no traceback), 1 internal error or a run that could not produce a model, 130 interrupted.
"""

from __future__ import annotations

import os

# Before anything imports TensorFlow: keep its C++ start-up chatter off the user's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")

import ast  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402

import click  # noqa: E402

from kerasdl import __version__  # noqa: E402
from kerasdl.errors import KerasdlUsageError  # noqa: E402

# Sub-commands: name -> (module in kerasdl.cli, attribute). Each is imported on first use, so
# `kerasdl train --model nope` loads only cli/train.py (not scipy for calibrate, nor TensorFlow)
# and `kerasdl --help` reads the commands' summaries from their source without importing them.
COMMANDS = {
    "train": ("train", "train_command"),
    "evaluate": ("evaluate", "evaluate_command"),
    "calibrate": ("calibrate", "calibrate_command"),
    "predict": ("predict", "predict_command"),
    "export": ("export", "export_command"),
    "tune": ("tune", "tune_command"),
    "models": ("catalog", "models_command"),
    "datasets": ("catalog", "datasets_command"),
    "runs": ("runs", "runs_command"),
    "augment-preview": ("augment_preview", "augment_preview_command"),
    "tasks": ("tasks", "tasks_command"),
    "sample": ("sample", "sample_command"),
    "encode": ("encode", "encode_command"),
}

EPILOG = """\b
Examples:
  kerasdl train                                   # lenet5 on mnist5k (offline), ~1 minute on 2 CPUs
  kerasdl train --model mlp --dataset digits --epochs 30
  kerasdl evaluate runs/<run>                     # accuracy, NLL, ECE, confusion matrix
  kerasdl calibrate runs/<run> --conformal-alpha 0.1   # temperature scaling + prediction sets
  kerasdl export runs/<run>                       # saved_models/<run>/<version>/
  kerasdl tune --model mlp --dataset digits --tuner hyperband   # Keras Tuner search
  kerasdl predict saved_models/<run> digit.png
  kerasdl train --task vae --task-opt latent_dim=2  # a variational autoencoder (kerasdl tasks)
  kerasdl sample runs/<vae-run> --out grid.png    # samples from a generative run
  kerasdl encode runs/<vae-run> digits.npz        # the codes of inputs
  kerasdl models; kerasdl datasets; kerasdl tasks # what is available
"""


class KerasdlGroup(click.Group):
    """A group that turns every user error into one line and exit code 2.

    Its sub-commands (:data:`COMMANDS`) are imported lazily: a command's module loads when the
    command runs or shows its own help; the root ``--help`` lists them from their docstrings.
    """

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx, name):
        if name not in self.commands and name in COMMANDS:
            module, attribute = COMMANDS[name]
            command = getattr(importlib.import_module(f"{__package__}.{module}"), attribute)
            self.add_command(command, name)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx, args):
        """As click's, but an unknown name is matched against every command, loaded or not."""
        from click.exceptions import NoSuchCommand

        try:
            return super().resolve_command(ctx, args)
        except NoSuchCommand as exc:
            name = click.utils.make_str(args[0])
            raise NoSuchCommand(name, possibilities=self.list_commands(ctx), ctx=ctx) from None

    def format_commands(self, ctx, formatter):
        """The command list, from each not-yet-imported command's docstring (read, not run)."""
        names = self.list_commands(ctx)
        summaries = {}
        for name in names:
            command = self.commands.get(name)
            if command is None:
                command = click.Command(name, help=_command_docstring(*COMMANDS[name]))
            if not command.hidden:
                summaries[name] = command
        if summaries:
            limit = formatter.width - 6 - max(len(name) for name in summaries)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in summaries.items()])

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:  # includes BadParameter, NoSuchOption
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _fail(f"{exc.format_message()}{hint}", 2)
        except KerasdlUsageError as exc:
            _fail(str(exc), 2)
        except click.Abort as exc:  # click turns Ctrl-C into Abort (and has closed the ^C line)
            if isinstance(exc.__cause__, KeyboardInterrupt):
                _interrupted(exc.__cause__)
            _fail("aborted", 1)
        except KeyboardInterrupt as exc:
            click.echo(err=True)
            _interrupted(exc)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except Exception as exc:  # an internal error: say what, where the details are, exit 1
            from kerasdl.engine.fit import TrainingFailed

            if isinstance(exc, TrainingFailed):
                _fail(str(exc), 1)
            if os.environ.get("KERASDL_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (set KERASDL_DEBUG=1 for the traceback)", 1)
        if isinstance(rv, int):
            sys.exit(rv)
        sys.exit(0)


def _interrupted(exc: KeyboardInterrupt) -> None:
    """Ctrl-C: one line, no 'Error:' (the user asked for it), exit 130. A run that was training
    says how to resume it (``kerasdl.engine.fit.RunInterrupted``)."""
    click.echo(str(exc) or "interrupted", err=True)
    sys.exit(130)


def _command_docstring(module: str, attribute: str) -> str | None:
    """The docstring of ``kerasdl.cli.<module>.<attribute>``, read from its source (no import)."""
    spec = importlib.util.find_spec(f"{__package__}.{module}")
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            return ast.get_docstring(node, clean=False)
    # Not a plain decorated function: import it after all.
    return getattr(importlib.import_module(f"{__package__}.{module}"), attribute).help


def _fail(message: str, code: int) -> None:
    message = " ".join(str(message).split())  # one line, always
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@click.group(cls=KerasdlGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="kerasdl")
def cli():
    """kerasdl: train, evaluate, calibrate and export Keras deep-learning models.

    Works offline: the default datasets ship inside installed packages.
    """


if __name__ == "__main__":  # pragma: no cover
    cli()
