"""Plots the scale curves of the benchmark results into one PNG.

    python -m benchmarks.studies.plot_scale [--inputs benchmarks/results] [--output benchmarks/results/scale.png]

Reads, from the `--inputs` directory:

- `overhead.json`, key `gala_scale` (`python -m benchmarks.overhead --scale`): the GALA loss step time over
  plain cross-entropy on a linear classifier, against the number of classes;
- `scale_gbg.json` (`python -m benchmarks.gbg_scale`): the one-off time of GBG's class grouping against the
  number of classes, and the time of the min-norm solve with one objective per class (G = K, the ungrouped
  multi-objective problem) against K, next to the per-step solve for the grouped problem (G groups);
- `scale_gradtail.json` (`python -m benchmarks.gradtail_scale`), if present: the GradTail step time over a
  plain step against the number of selected parameters (CPU-time ratio, with the wall-time ratio in grey,
  when the file has both).

One panel per curve, log-scaled x axes. A missing file or key leaves its panels out (and says so); with none
of them there is nothing to plot and the command fails. Writes `--output` (matplotlib, Agg backend).
"""

import argparse
import json
import pathlib
import sys

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"


def _read(path):
    return json.loads(path.read_text()) if path.exists() else None


def load_panels(inputs):
    """(panels, notes): panels as dicts of title, x, y, labels and options; notes on what was left out."""
    inputs = pathlib.Path(inputs)
    panels, notes = [], []
    overhead = _read(inputs / "overhead.json")
    if overhead is None or "gala_scale" not in overhead:
        notes.append(f"no GALA scale curve: {inputs / 'overhead.json'} missing or without 'gala_scale'")
    else:
        classes = sorted(overhead["gala_scale"]["classes"].items(), key=lambda item: int(item[0]))
        panels.append({"title": "GALA loss step vs plain CE (linear classifier)",
                       "x": [int(k) for k, _ in classes], "y": [v["gala_over_ce"] for _, v in classes],
                       "xlabel": "number of classes", "ylabel": "step time / CE step time (×)", "unit_line": 1.0})
    gbg = _read(inputs / "scale_gbg.json")
    if gbg is None:
        notes.append(f"no GBG scale curves: {inputs / 'scale_gbg.json'} missing")
    else:
        rows = sorted(gbg["rows"], key=lambda row: row["classes"])
        groups = rows[0]["groups"] if rows else "G"
        panels.append({"title": f"GBG class grouping into {groups} groups (one-off)",
                       "x": [row["classes"] for row in rows], "y": [row["grouping_seconds"] for row in rows],
                       "xlabel": "number of classes", "ylabel": "time (s)", "log_y": True})
        solved = [row for row in rows if row.get("min_norm_per_class_objectives_seconds") is not None]
        group_solve = gbg.get("min_norm_group_solve_seconds", {})
        panels.append({"title": "Min-norm solve, one objective per class (G = K)",
                       "x": [row["classes"] for row in solved],
                       "y": [row["min_norm_per_class_objectives_seconds"] for row in solved],
                       "xlabel": "number of objectives K (classes)", "ylabel": "time per solve (s)", "log_y": True,
                       "reference": None if "seconds_including_gram" not in group_solve else (
                           group_solve["seconds_including_gram"],
                           f"G = {group_solve.get('groups')} groups, {group_solve.get('parameters', 0):,} "
                           "parameters (per step, incl. Gram)")})
    gradtail = _read(inputs / "scale_gradtail.json")
    if gradtail is None:
        notes.append(f"no GradTail scale curve: {inputs / 'scale_gradtail.json'} missing")
    else:
        rows = sorted(gradtail["rows"], key=lambda row: row["selected_parameters"])
        cpu = all("gradtail_over_plain_cpu_time" in row for row in rows)
        panels.append({"title": "GradTail step vs plain step (MLP, dense path)",
                       "x": [row["selected_parameters"] for row in rows],
                       "y": [row["gradtail_over_plain_cpu_time" if cpu else "gradtail_over_plain"] for row in rows],
                       "label": "CPU time" if cpu else "wall time",
                       "second": ("wall time", [row["gradtail_over_plain"] for row in rows]) if cpu else None,
                       "xlabel": "selected parameters (hidden + classifier layer)",
                       "ylabel": "step time / plain step time (×, median)", "unit_line": 1.0})
    return panels, notes


def plot(panels, output):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = len(panels) if len(panels) < 4 else 2
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.0 * rows), squeeze=False)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    for axis, panel in zip(axes.flat, panels):
        axis.plot(panel["x"], panel["y"], marker="o", label=panel.get("label"))
        axis.margins(x=0.1, y=0.15)
        if panel.get("second") is not None:
            label, values = panel["second"]
            axis.plot(panel["x"], values, marker="s", color="grey", alpha=0.5, linewidth=1, label=label)
        for x, y in zip(panel["x"], panel["y"]):
            axis.annotate(f"{y:g}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        axis.set_xscale("log")
        if panel.get("log_y"):
            axis.set_yscale("log")
        if panel.get("unit_line") is not None:
            axis.axhline(panel["unit_line"], color="grey", linestyle=":", linewidth=1)
            low, high = axis.get_ylim()
            axis.set_ylim(min(low, 0.9), max(high, 1.1))
        if panel.get("reference") is not None:
            value, label = panel["reference"]
            axis.axhline(value, color="tab:orange", linestyle="--", linewidth=1, label=label)
        if panel.get("reference") is not None or panel.get("second") is not None:
            axis.legend(fontsize=7, loc="upper left")
        axis.set_title(panel["title"], fontsize=9)
        axis.set_xlabel(panel["xlabel"])
        axis.set_ylabel(panel["ylabel"])
        axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    plt.close(figure)
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.plot_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", default=str(RESULTS), help="directory holding the scale JSONs")
    parser.add_argument("--output", default=str(RESULTS / "scale.png"))
    args = parser.parse_args(argv)
    panels, notes = load_panels(args.inputs)
    for note in notes:
        print(note)
    if not panels:
        parser.error(f"Expected overhead.json (gala_scale), scale_gbg.json or scale_gradtail.json in --inputs. "
                     f"Received: --inputs {args.inputs!r} with none of them")
    output = plot(panels, args.output)
    print(f"wrote {output} ({len(panels)} panels: {', '.join(panel['title'] for panel in panels)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
