#!/usr/bin/env python3
"""Latency vs sequence length as an SVG (log-log), one line per implementation and mode, from the JSON rows
that bench/gpu_bench.py writes (--json-out: a list of {"impl", "mode", "n", "ms", ...}). No plotting library:
the GPU machine and CI have none to rely on.

Usage: python3 bench/plot_latency.py bench.json latency.svg [--title TEXT]
"""
import argparse
import json
import math

# (impl, mode) -> (label, colour, dashed); ours solid, baselines dashed
SERIES = [
    (("dattn", "delta"), "dattn delta", "#d62728", False),
    (("dattn", "sparse"), "dattn sparse", "#ff7f0e", False),
    (("dattn", "dense"), "dattn dense", "#1f77b4", False),
    (("flex", "delta"), "FlexAttention delta", "#9467bd", True),
    (("flex", "sparse"), "FlexAttention sparse", "#e377c2", True),
    (("sdpa_flash", "dense"), "SDPA FlashAttention-2", "#2ca02c", True),
    (("sdpa_cudnn", "dense"), "SDPA cuDNN", "#17becf", True),
]


def marker(index, x, y, r, colour):
    """A filled marker whose shape depends on the series, so series lying on one another stay apart."""
    shape = index % 4
    if shape == 0:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{colour}"/>'
    if shape == 1:
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" fill="{colour}"/>'
    if shape == 2:
        return (f'<polygon points="{x:.1f},{y - 1.3 * r:.1f} {x - 1.2 * r:.1f},{y + r:.1f} {x + 1.2 * r:.1f},{y + r:.1f}" '
                f'fill="{colour}"/>')
    return (f'<polygon points="{x:.1f},{y - 1.4 * r:.1f} {x + 1.4 * r:.1f},{y:.1f} {x:.1f},{y + 1.4 * r:.1f} '
            f'{x - 1.4 * r:.1f},{y:.1f}" fill="{colour}"/>')


def svg_plot(rows, title):
    points = {}
    for r in rows:
        points.setdefault((r["impl"], r["mode"]), []).append((r["n"], r["ms"]))
    xs = [n for pts in points.values() for n, _ in pts]
    ys = [ms for pts in points.values() for _, ms in pts]
    if not xs:
        raise SystemExit("no rows to plot")
    width, height, left, right, top, bottom = 760, 480, 70, 200, 40, 50
    lx0, lx1 = math.log2(min(xs)), math.log2(max(xs))
    ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    lx1 = lx1 if lx1 > lx0 else lx0 + 1
    ly1 = ly1 if ly1 > ly0 else ly0 + 1

    def px(n):
        return left + (math.log2(n) - lx0) / (lx1 - lx0) * (width - left - right)

    def py(ms):
        return height - bottom - (math.log10(ms) - ly0) / (ly1 - ly0) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="14">{title}</text>']
    for e in range(int(ly0), int(ly1) + 1):  # decades
        y = py(10.0 ** e)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{10.0 ** e:g}</text>')
    for n in sorted(set(xs)):
        x = px(n)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="#eee"/>')
        label = f"{n // 1048576}M" if n >= 1048576 else f"{n // 1024}K"
        out.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 10}" text-anchor="middle">sequence length '
               f'(tokens, log scale)</text>')
    out.append(f'<text x="16" y="{(top + height - bottom) / 2:.0f}" transform="rotate(-90 16 '
               f'{(top + height - bottom) / 2:.0f})" text-anchor="middle">ms per call (log scale)</text>')
    legend_y = top + 10
    present = [s for s in SERIES if points.get(s[0])]
    for index, (key, label, colour, dashed) in enumerate(present):
        pts = sorted(points[key])
        # earlier series wider with larger markers, later ones on top of them: coinciding series stay visible
        stroke = 1.5 + 0.5 * (len(present) - 1 - index)
        radius = 2 + 0.6 * stroke
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        path = " ".join(f"{px(n):.1f},{py(ms):.1f}" for n, ms in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="{stroke:.1f}"{dash}/>')
        for n, ms in pts:
            out.append(marker(index, px(n), py(ms), radius, colour))
        x0 = width - right + 15
        out.append(f'<line x1="{x0}" y1="{legend_y}" x2="{x0 + 24}" y2="{legend_y}" stroke="{colour}" '
                   f'stroke-width="{stroke:.1f}"{dash}/>')
        out.append(marker(index, x0 + 12, legend_y, radius, colour))
        out.append(f'<text x="{x0 + 30}" y="{legend_y + 4}">{label}</text>')
        legend_y += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json_in")
    ap.add_argument("svg_out")
    ap.add_argument("--title", default="Llama-3.1-8B attention layer, bf16: latency vs length")
    args = ap.parse_args()
    with open(args.json_in) as f:
        rows = json.load(f)
    with open(args.svg_out, "w") as f:
        f.write(svg_plot(rows, args.title))


if __name__ == "__main__":
    main()
