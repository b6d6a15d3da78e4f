"""Root command group: ``kerasdl``.

Exit codes (a contract scripts rely on): 0 success, 2 bad usage or bad input (one line on stderr,
no traceback), 1 internal error or a run that could not produce a model, 130 interrupted.
"""

from __future__ import annotations

import os

# Before anything imports TensorFlow: keep its C++ start-up chatter off the user's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")

import sys  # noqa: E402

import click  # noqa: E402

from kerasdl import __version__  # noqa: E402
from kerasdl.errors import KerasdlUsageError  # noqa: E402

from .augment_preview import augment_preview_command  # noqa: E402
from .calibrate import calibrate_command  # noqa: E402
from .catalog import datasets_command, models_command  # noqa: E402
from .evaluate import evaluate_command  # noqa: E402
from .export import export_command  # noqa: E402
from .predict import predict_command  # noqa: E402
from .train import train_command  # noqa: E402
from .tune import tune_command  # noqa: E402

EPILOG = """\b
Examples:
  kerasdl train                                   # lenet5 on mnist5k (offline), ~1 minute on 2 CPUs
  kerasdl train --model mlp --dataset digits --epochs 30
  kerasdl evaluate runs/<run>                     # accuracy, NLL, ECE, confusion matrix
  kerasdl calibrate runs/<run> --conformal-alpha 0.1   # temperature scaling + prediction sets
  kerasdl export runs/<run>                       # saved_models/<model>/<version>/
  kerasdl tune --model mlp --dataset digits --tuner hyperband   # Keras Tuner search
  kerasdl predict saved_models/lenet5 digit.png
  kerasdl models; kerasdl datasets                # what is available
"""


class KerasdlGroup(click.Group):
    """A group that turns every user error into one line and exit code 2."""

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
        except click.Abort:
            _fail("aborted", 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except Exception as exc:  # an internal error: say what, where the details are, exit 1
            from kerasdl.training import TrainingFailed

            if isinstance(exc, TrainingFailed):
                _fail(str(exc), 1)
            if os.environ.get("KERASDL_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (set KERASDL_DEBUG=1 for the traceback)", 1)
        if isinstance(rv, int):
            sys.exit(rv)
        sys.exit(0)


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


cli.add_command(train_command)
cli.add_command(evaluate_command)
cli.add_command(calibrate_command)
cli.add_command(predict_command)
cli.add_command(export_command)
cli.add_command(tune_command)
cli.add_command(models_command)
cli.add_command(datasets_command)
cli.add_command(augment_preview_command)


if __name__ == "__main__":  # pragma: no cover
    cli()
