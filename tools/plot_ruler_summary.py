#!/usr/bin/env python3
"""Average RULER score per mode vs context length, one SVG, from the results.json files of several
`dattn eval ruler` runs (each run one window + sink budget). Series: a mode at one window fraction of the context (the
smallest fraction solid, larger ones dashed); dense is drawn once. No plotting library needed.

Usage: python3 tools/plot_ruler_summary.py OUT.svg RUN_DIR [RUN_DIR ...] [--title TEXT]
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path

COLOURS = {"dense": "#1f77b4", "sparse": "#ff7f0e", "recompute": "#2ca02c", "delta": "#d62728"}


def averages(run_dirs):
    series = defaultdict(dict)  # label -> {length: average score}
    for run_dir in run_dirs:
        doc = json.loads((Path(run_dir) / "results.json").read_text())
        cells = defaultdict(list)
        for cell in doc["summary"]:
            cells[(cell["mode"], cell["length"])].append(cell["score"])
        for (mode, length), scores in cells.items():
            # runs whose window is the same fraction of the context form one series
            fraction = "" if mode == "dense" else f'1/{length // doc["run"]["window"]}'
            series[(mode, fraction)][length] = sum(scores) / len(scores)
    return series


def svg(series, title):
    lengths = sorted({n for points in series.values() for n in points})
    width, height, left, right, top, bottom = 800, 420, 60, 300, 40, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    px = lambda i: left + (i + 0.5) * plot_w / len(lengths)
    py = lambda s: top + (1 - s / 100) * plot_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>', f'<text x="{left}" y="22" font-size="14">{title}</text>']
    for s in range(0, 101, 20):
        out.append(f'<line x1="{left}" y1="{py(s):.1f}" x2="{left + plot_w}" y2="{py(s):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(s) + 4:.1f}" text-anchor="end">{s}</text>')
    for i, n in enumerate(lengths):
        out.append(f'<text x="{px(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{n // 1024}K tokens</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2:.0f}" transform="rotate(-90 16 {top + plot_h / 2:.0f})" '
               f'text-anchor="middle">average score (%)</text>')
    budgets = sorted({b for _, b in series if b}, key=lambda b: -int(b.split("/")[1]))
    legend_y = top + 10
    for (mode, budget), points in sorted(series.items(), key=lambda kv: (kv[0][1] != "", kv[0][1], kv[0][0])):
        dashed = budget and budgets.index(budget) > 0
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        xy = [(px(lengths.index(n)), py(s)) for n, s in sorted(points.items())]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        colour = COLOURS.get(mode, "#555")
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in xy:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{3 if dashed else 4}" fill="{colour}"/>')
        label = mode if not budget else f"{mode}, window {budget} of the context"
        out.append(f'<line x1="{width - right + 15}" y1="{legend_y}" x2="{width - right + 40}" y2="{legend_y}" '
                   f'stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{width - right + 46}" y="{legend_y + 4}">{label}</text>')
        legend_y += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("svg_out")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--title", default="RULER average vs context length")
    args = ap.parse_args()
    Path(args.svg_out).write_text(svg(averages(args.runs), args.title))


if __name__ == "__main__":
    main()
