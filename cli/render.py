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
    # autoencoders and the VAE (nats per example where the figure is a log-likelihood)
    "bce": "{:.4f}", "noisy_mse": "{:.4f}", "noisy_input_mse": "{:.4f}", "pca_mse": "{:.4f}",
    "mse_over_pca": "{:.4f}", "principal_angle_max_deg": "{:.2f}", "elbo": "{:.2f}", "reconstruction": "{:.2f}",
    "kl": "{:.2f}", "nll_iwae": "{:.2f}", "mean_mse": "{:.4f}",
    # generative models (besides the quality table of print_quality)
    "perplexity": "{:.2f}", "codebook_usage": "{:.2%}", "reconstruction_mse": "{:.4f}",
    # physics-informed runs
    "rel_l2": "{:.3e}", "max_abs_error": "{:.3e}", "mean_abs_error": "{:.3e}", "residual_max": "{:.3e}",
    "residual_mean": "{:.3e}", "points": "{:,}",
}


def print_title(title: str) -> None:
    """One heading line that rich never folds: a run path in it stays whole on a narrow terminal
    (the terminal may wrap it visually, but it is copied as one line)."""
    console.print(title, style="italic", soft_wrap=True, highlight=False, markup=False)


def print_metrics(report: Mapping, title: str = "metrics", class_names=None) -> None:
    """The headline figures of ``report`` under ``title`` (which may hold a run path), then the
    per-class accuracy when ``class_names`` are given."""
    print_title(title)
    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, fmt in SHOWN.items():
        if isinstance(report.get(key), (int, float)):  # not e.g. the autoencoder's "loss": "mse" (its name)
            label = f"ece ({report.get('ece_bins', 15)} bins)" if key == "ece" else key
            table.add_row(label, fmt.format(report[key]))
    if table.row_count:
        console.print(table)
    if isinstance(report.get("fid"), (int, float)):
        print_quality(report)
    if isinstance(report.get("coefficients"), Mapping):  # an inverse PINN run's fitted coefficients
        coef = Table(title="coefficients", show_header=True, header_style="bold")
        for column in ("name", "fitted", "true", "relative error"):
            coef.add_column(column, justify="left" if column == "name" else "right")
        for name, c in report["coefficients"].items():
            coef.add_row(name, f"{c['fitted']:.6g}", f"{c['true']:.6g}", f"{c['rel_error']:.3%}")
        console.print(coef)
    per_class = report.get("per_class_accuracy")
    if per_class and class_names is not None:
        pc = Table(title="per-class accuracy", show_header=True, header_style="bold")
        pc.add_column("class")
        pc.add_column("accuracy", justify="right")
        for name, acc in zip(class_names, per_class):
            pc.add_row(str(name), "-" if acc is None else f"{acc:.2%}")
        console.print(pc)


def print_quality(report: Mapping) -> None:
    """A generative run's FID / KID / precision / recall beside their floor (real train vs real
    test) and ceiling (uniform noise vs real test), then the feature network and mode coverage."""
    table = Table(title=f"sample quality ({report.get('n_generated', '?')} samples vs "
                        f"{report.get('n_real', '?')} real test examples)", header_style="bold")
    for col in ("", "FID", "KID", "precision", "recall"):
        table.add_column(col, justify="right" if col else "left")

    def row(name: str, r: Mapping) -> None:
        kid = f"{r['kid']:.4g} +- {r.get('kid_std', 0.0):.2g}" if "kid" in r else "-"
        table.add_row(name, f"{r.get('fid', float('nan')):.4g}", kid, f"{r.get('precision', float('nan')):.3f}",
                      f"{r.get('recall', float('nan')):.3f}")

    row("generated", report)
    for name in ("floor", "ceiling"):
        if isinstance(report.get(name), Mapping):
            row(f"{name} ({'real train' if name == 'floor' else 'uniform noise'})", report[name])
    console.print(table)
    if isinstance(report.get("kid_below_ceiling_std"), (int, float)):
        click.echo(f"KID below the noise ceiling by {report['kid_below_ceiling_std']:.1f} std")
    if isinstance(report.get("class_match"), (int, float)):
        click.echo(f"samples classified as the class asked for: {report['class_match']:.1%}")
    net = report.get("feature_net") or {}
    if net:
        sha = (net.get("sha256") or "")[:16]
        acc = net.get("test_accuracy")
        click.echo(f"features: {net.get('name')}" + (f" sha256 {sha}..." if sha else "")
                   + (f", test accuracy {acc:.2%}" if isinstance(acc, (int, float)) else ""))
    labels = report.get("labels") or {}
    if labels:
        click.echo(f"classes of the samples: {labels.get('classes_covered')} of {len(labels.get('counts', []))} "
                   f"covered, entropy {labels.get('entropy', 0):.3f} of {labels.get('max_entropy', 0):.3f} nats")
    modes = report.get("modes") or {}
    if modes:
        names = modes.get("class_names") or []
        fractions = ", ".join(f"{names[i] if i < len(names) else i} {f:.1%}" for i, f in enumerate(modes["fractions"]))
        click.echo(f"modes covered: {modes['modes_covered']} of {modes['modes']} "
                   f"({modes['high_quality']:.1%} of samples within {modes['sigmas']:g} std); nearest mode: {fractions}")


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


def print_calibration(record: Mapping) -> None:
    """Test figures before and after calibration, and the conformal sets when there are any."""
    method = record["method"]
    what = f"T = {record['temperature']:.3f}" if "temperature" in record else f"{method} scaling"
    table = Table(title=f"calibration ({what}, fitted on {record['validation_examples']:,} validation examples)",
                  header_style="bold")
    for col in ("test metric", "before", "after"):
        table.add_column(col, justify="left" if col == "test metric" else "right")
    n_bins = record.get("n_bins", 15)
    for key, fmt in (("accuracy", "{:.2%}"), ("nll", "{:.4f}"), ("brier", "{:.4f}"), ("ece", "{:.2%}"),
                     ("mce", "{:.2%}"), ("adaptive_ece", "{:.2%}"), ("classwise_ece", "{:.2%}")):
        label = f"{key} ({n_bins} bins)" if "ece" in key else key
        table.add_row(label, fmt.format(record["test_before"][key]), fmt.format(record["test_after"][key]))
    console.print(table)
    conformal = record.get("conformal")
    if conformal:
        sets = Table(title=f"conformal prediction sets (alpha {conformal['alpha']:g}, target coverage "
                           f"{conformal['target_coverage']:.0%})", header_style="bold")
        for col in ("score", "qhat", "test coverage", "mean set size", "empty sets"):
            sets.add_column(col, justify="left" if col == "score" else "right")
        for score in ("lac", "aps"):
            c = conformal[score]
            qhat = c["qhat"] if isinstance(c["qhat"], str) else f"{c['qhat']:.4f}"
            sets.add_row(score.upper(), qhat, f"{c['coverage']:.2%}", f"{c['mean_set_size']:.2f}",
                         f"{c['empty_sets']:.1%}")
        console.print(sets)


def print_uncertainty(report: Mapping, split: str) -> None:
    """Raw, calibrated and MC-dropout figures side by side, and conformal coverage, when present."""
    columns = [("model", report)]
    if "calibrated" in report:
        columns.append((f"{report['calibrated']['method']}-scaled", report["calibrated"]))
    if "mc_dropout" in report:
        columns.append((f"MC dropout ({report['mc_dropout']['samples']})", report["mc_dropout"]))
    if len(columns) > 1:
        table = Table(title=f"{split}: calibration and uncertainty", header_style="bold")
        table.add_column("metric")
        for name, _ in columns:
            table.add_column(name, justify="right")
        for key, fmt in (("accuracy", "{:.2%}"), ("nll", "{:.4f}"), ("brier", "{:.4f}"), ("ece", "{:.2%}")):
            table.add_row(key, *(fmt.format(c[key]) if key in c else "-" for _, c in columns))
        if "mc_dropout" in report:
            mc = report["mc_dropout"]
            table.add_row("mean predictive entropy", "-", *(["-"] if "calibrated" in report else []),
                          f"{mc['mean_predictive_entropy']:.4f}")
            table.add_row("mean mutual information", "-", *(["-"] if "calibrated" in report else []),
                          f"{mc['mean_mutual_information']:.4f}")
        console.print(table)
    for score, c in (report.get("conformal") or {}).items():
        click.echo(f"conformal {score.upper()} sets (alpha {c['alpha']:g}): coverage {c['coverage']:.2%}, "
                   f"mean set size {c['mean_set_size']:.2f}")
