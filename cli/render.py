"""Terminal output helpers (rich tables), shared by the commands."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import click
from rich.console import Console
from rich.table import Table

console = Console()

# Figures shown in the summary table, in order, with how to print them.
SHOWN = {
    "accuracy": "{:.2%}", "mean_iou": "{:.4f}", "top5_accuracy": "{:.2%}", "loss": "{:.4f}", "nll": "{:.4f}",
    "ece": "{:.2%}", "mse": "{:.4f}", "rmse": "{:.4f}", "mae": "{:.4f}", "r2": "{:.4f}", "n": "{:,}",
}


def print_metrics(report: Mapping, title: str = "metrics", class_names=None) -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, fmt in SHOWN.items():
        if key in report and report[key] is not None:
            label = f"ece ({report.get('ece_bins', 15)} bins)" if key == "ece" else key
            table.add_row(label, fmt.format(report[key]))
    console.print(table)
    per_class = report.get("per_class_accuracy")
    if per_class and class_names is not None:
        pc = Table(title="per-class accuracy", show_header=True, header_style="bold")
        pc.add_column("class")
        pc.add_column("accuracy", justify="right")
        for name, acc in zip(class_names, per_class):
            pc.add_row(str(name), "-" if acc is None else f"{acc:.2%}")
        console.print(pc)


def print_rows(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]], *,
               right: Sequence[str] = (), wrap: Sequence[str] = ()) -> None:
    """A listing: a rich table on a terminal, tab-separated lines (header first) otherwise.

    Plain lines keep ``kerasdl models | grep resnet`` and ``| cut -f6`` useful; on a terminal
    only the ``wrap`` columns fold, so names and numbers stay on one line.
    """
    rows = list(rows)
    if not console.is_terminal:
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join(str(cell).replace("\t", " ") for cell in row))
        return
    table = Table(title=title, header_style="bold")
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", no_wrap=col not in wrap,
                         overflow="fold" if col in wrap else "ellipsis")
    for row in rows:
        table.add_row(*row)
    console.print(table)
