#!/usr/bin/env python3
"""Per-layer plots and a summary table from several `dattn eval fidelity` runs on one prompt (each run one
key pattern / correction / delta variant / gamma). No plotting library needed.

Writes into OUT_DIR:
  NAME_attention.svg  attention-output relative error to dense per layer, one line per mode of the runs
  NAME_hidden.svg     the same for the residual stream after each layer
  NAME_one_layer.svg  the one-layer attention error (each mode on the dense run's q, k, v), when the runs
                      have it
  NAME_transfer.svg   the Δ-transfer residual ||Δ_i - Δ_(i-o)|| / ||Δ_i|| per layer, one line per offset o
                      (of the first run: it depends on the prompt and the key pattern only)
  NAME_summary.csv    one row per run and mode: means over the layers, the last layer's hidden error, and
                      in how many layers the mode is closer to dense than sparse (same prompt and pattern)

Usage: python3 tools/plot_fidelity_summary.py OUT_DIR NAME RUN_DIR [RUN_DIR ...] [--title TEXT]
"""
import argparse
import csv
import json
from pathlib import Path

COLOURS = ["#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#1f77b4"]
PATTERN_KEYS = ("task", "length", "seed", "pattern", "window", "sink", "block_q", "block_k", "topk")


def load_run(run_dir):
    run_dir = Path(run_dir)
    settings = json.loads((run_dir / "fidelity.json").read_text())
    with open(run_dir / "fidelity.csv") as f:
        layers = list(csv.DictReader(f))
    with open(run_dir / "delta_transfer.csv") as f:
        transfer = list(csv.DictReader(f))
    return {"dir": run_dir, "settings": settings, "layers": layers, "transfer": transfer}


def series_label(settings, mode):
    """The mode as the runs differ: the delta variant and gamma where they matter."""
    label = mode
    if mode == "delta" and settings.get("delta_variant", "repeat") != "repeat":
        label += " " + settings["delta_variant"]
    if mode in ("recompute", "delta") and settings["gamma"] != 64:
        label += f" γ={settings['gamma']}"
    return label


ONE_LAYER = "one_layer_attention_relative_error"


def has_one_layer(run):
    return ONE_LAYER in run["layers"][0]


def per_layer(run, mode, column):
    rows = [r for r in run["layers"] if r["mode"] == mode]
    return [int(r["layer"]) for r in rows], [float(r[column]) for r in rows]


def svg_lines(series, title, x_label, y_label, reference_y=None):
    """series: [(label, xs, ys)] -> an SVG line plot with a legend on the right."""
    width, height, left, right, top, bottom = 860, 420, 60, 260, 40, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    x_max = max(max(xs) for _, xs, _ in series) or 1
    y_max = max(max(ys) for _, _, ys in series)
    if reference_y is not None:
        y_max = max(y_max, reference_y)
    step = next(s for s in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0) if y_max / s <= 8)
    y_top = step * (int(y_max / step) + 1)
    px = lambda x: left + x / x_max * plot_w
    py = lambda y: top + (1 - y / y_top) * plot_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>', f'<text x="{left}" y="22" font-size="14">{title}</text>']
    for i in range(int(round(y_top / step)) + 1):
        y = i * step
        out.append(f'<line x1="{left}" y1="{py(y):.1f}" x2="{left + plot_w}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    x_step = 5 if x_max > 10 else 1
    for x in range(0, int(x_max) + 1, x_step):
        out.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 8}" text-anchor="middle">{x_label}</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2:.0f}" transform="rotate(-90 16 {top + plot_h / 2:.0f})" '
               f'text-anchor="middle">{y_label}</text>')
    if reference_y is not None:
        out.append(f'<line x1="{left}" y1="{py(reference_y):.1f}" x2="{left + plot_w}" y2="{py(reference_y):.1f}" '
                   f'stroke="#000" stroke-dasharray="4 4"/>')
    legend_y = top + 10
    for i, (label, xs, ys) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys))
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<line x1="{width - right + 15}" y1="{legend_y}" x2="{width - right + 40}" y2="{legend_y}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{width - right + 46}" y="{legend_y + 4}">{label}</text>')
        legend_y += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


def mode_series(runs, column):
    series, seen = [], set()
    for run in runs:
        for mode in dict.fromkeys(r["mode"] for r in run["layers"]):
            label = series_label(run["settings"], mode)
            if label in seen:  # sparse of the same pattern, run again with another correction
                continue
            seen.add(label)
            series.append((label, *per_layer(run, mode, column)))
    return series


def summary_rows(runs):
    sparse = {}  # the sparse run of each prompt and pattern: what "closer to dense than sparse" compares with
    for run in runs:
        if any(r["mode"] == "sparse" for r in run["layers"]):
            sparse.setdefault(tuple(run["settings"].get(k) for k in PATTERN_KEYS), run)
    rows = []
    for run in runs:
        s = run["settings"]
        reference = sparse.get(tuple(s.get(k) for k in PATTERN_KEYS))
        for mode in dict.fromkeys(r["mode"] for r in run["layers"]):
            _, attention = per_layer(run, mode, "attention_relative_error")
            _, cosine = per_layer(run, mode, "attention_cosine")
            _, hidden = per_layer(run, mode, "hidden_relative_error")
            row = {"run": run["dir"].name, "mode": series_label(s, mode), "tokens": s["tokens"],
                   "first_scored_row": s["first_scored_row"], "pattern": s["pattern"], "window": s["window"],
                   "sink": s["sink"], "gamma": s["gamma"],
                   "mean_attention_relative_error": f"{sum(attention) / len(attention):.4f}",
                   "mean_attention_cosine": f"{sum(cosine) / len(cosine):.4f}",
                   "mean_hidden_relative_error": f"{sum(hidden) / len(hidden):.4f}",
                   "last_layer_hidden_relative_error": f"{hidden[-1]:.4f}",
                   "layers_attention_below_sparse": "", "layers_hidden_below_sparse": "",
                   "mean_one_layer_attention_relative_error": "", "layers_one_layer_below_sparse": ""}
            one_layer = has_one_layer(run) and per_layer(run, mode, ONE_LAYER)[1]
            if one_layer:
                row["mean_one_layer_attention_relative_error"] = f"{sum(one_layer) / len(one_layer):.4f}"
            if reference is not None and mode != "sparse":
                _, sparse_attention = per_layer(reference, "sparse", "attention_relative_error")
                _, sparse_hidden = per_layer(reference, "sparse", "hidden_relative_error")
                row["layers_attention_below_sparse"] = sum(a < b for a, b in zip(attention, sparse_attention))
                row["layers_hidden_below_sparse"] = sum(a < b for a, b in zip(hidden, sparse_hidden))
                if one_layer and has_one_layer(reference):
                    _, sparse_one = per_layer(reference, "sparse", ONE_LAYER)
                    row["layers_one_layer_below_sparse"] = sum(a < b for a, b in zip(one_layer, sparse_one))
            rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("name")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    runs = [load_run(d) for d in args.runs]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = args.title or f'{runs[0]["settings"]["tokens"]} tokens'
    (out / f"{args.name}_attention.svg").write_text(
        svg_lines(mode_series(runs, "attention_relative_error"), f"attention output vs dense, {title}", "layer",
                  "relative error ||out - dense|| / ||dense||"))
    (out / f"{args.name}_hidden.svg").write_text(
        svg_lines(mode_series(runs, "hidden_relative_error"), f"residual stream vs dense, {title}", "layer",
                  "relative error ||out - dense|| / ||dense||"))
    with_one_layer = [run for run in runs if has_one_layer(run)]
    if with_one_layer:
        (out / f"{args.name}_one_layer.svg").write_text(
            svg_lines(mode_series(with_one_layer, ONE_LAYER), f"one layer on dense inputs, {title}", "layer",
                      "relative error ||out - dense|| / ||dense||"))
    offsets = [c for c in runs[0]["transfer"][0] if c.startswith("offset_")]
    transfer = [(f"o = {c.split('_')[1]}", [int(r["layer"]) for r in runs[0]["transfer"]],
                 [float(r[c]) for r in runs[0]["transfer"]]) for c in offsets]
    (out / f"{args.name}_transfer.svg").write_text(
        svg_lines(transfer, f"Δ transfer, {title}", "layer", "||Δ_i - Δ_(i-o)|| / ||Δ_i|| (1: no gain)", 1.0))
    rows = summary_rows(runs)
    with open(out / f"{args.name}_summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
