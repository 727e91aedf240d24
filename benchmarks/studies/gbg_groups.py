"""Per-group view of GBG accuracy runs: which classes shared a group, their sizes and test accuracy.

    python -m benchmarks.studies.gbg_groups [--results benchmarks/results] [--out benchmarks/results/gbg_groups.md]

GBG balances *groups*: each group's loss L_g is the plain mean loss over that group's examples,
so inside a group the largest class dominates L_g and its gradient. This script reads every
`gbg*.json` that `benchmarks.run` wrote (they record the grouping, `groups`, computed once on
the initialized network) and lists, per run and group, the group's share of the training set
and each class as `class (train images): test accuracy %`. It also reports, per run label
over its seeds, the test accuracy of classes that are the largest in their group against the
others, split by how much smaller than their group's largest class they are.
"""

import argparse
import json
import pathlib
import statistics
import sys

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"
# Classes at least this many times smaller than the largest class of their group count as "dominated".
DOMINATED_RATIO = 10.0
WITHIN = f"within {DOMINATED_RATIO:g}x"


def group_rows(results):
    """[(group, share of train images, [(class, train images, test accuracy %)])] of one run's results."""
    groups, counts, accuracy = results["groups"], results["class_counts"], results["per_class_accuracy"]
    if not len(groups) == len(counts) == len(accuracy):
        raise ValueError("Expected `groups`, `class_counts` and `per_class_accuracy` of one length. Received "
                         f"lengths {len(groups)}, {len(counts)} and {len(accuracy)}")
    total = sum(counts)
    rows = []
    for group in sorted(set(groups)):
        members = [c for c, g in enumerate(groups) if g == group]
        rows.append((group, sum(counts[c] for c in members) / total,
                     [(c, counts[c], accuracy[c]) for c in members]))
    return rows


def class_roles(results):
    """Per class: (class, "largest" | WITHIN | "dominated", test accuracy %), by its group's largest class."""
    roles = []
    for _, _, members in group_rows(results):
        largest = max(count for _, count, _ in members)
        for c, count, acc in members:
            if count == largest:
                role = "largest"
            elif largest >= DOMINATED_RATIO * count:
                role = "dominated"
            else:
                role = WITHIN
            roles.append((c, role, acc))
    return roles


def report(results_dir):
    paths = sorted(pathlib.Path(results_dir).glob("*/gbg*.json"))
    if not paths:
        raise FileNotFoundError(f"no gbg*.json under {results_dir}/*/; run `python -m benchmarks.run --runs gbg...`")
    lines = ["# GBG runs, group by group", "",
             "Each class as `class (train images): test %`; share = the group's fraction of the training set.", ""]
    roles = {}
    for path in paths:
        results = json.loads(path.read_text())
        lines.append(f"## {path.parent.name}/{path.name}: {results['accuracy']['overall']:.1f} % overall "
                     f"(normalization {results.get('gbg_normalization')!r}, options {results.get('gbg_options', {})})")
        lines.append("")
        lines.append("| group | share | classes |")
        lines.append("|---|---|---|")
        for group, share, members in group_rows(results):
            cells = ", ".join(f"{c} ({n}): {a:.0f}" for c, n, a in members)
            lines.append(f"| {group} | {share:.3f} | {cells} |")
        lines.append("")
        label = f"{path.parent.name}/{results.get('run', path.stem.rsplit('-seed', 1)[0])}"
        ce_path = path.parent / f"ce-seed{results.get('seed')}.json"  # CE + WD of the same suite and seed
        ce = json.loads(ce_path.read_text())["per_class_accuracy"] if ce_path.exists() else None
        for c, role, acc in class_roles(results):
            roles.setdefault(label, {}).setdefault(role, []).append((acc, None if ce is None else ce[c]))
    lines.append("## Test accuracy by a class's place in its group, over the runs and seeds of each run label")
    lines.append("")
    lines.append(f"Dominated: at least {DOMINATED_RATIO:g}x smaller than the largest class of its group. "
                 "Cells: mean test % (classes, how many at 0 %; CE + WD's mean test % on the same classes, "
                 "same seed).")
    lines.append("")
    places = ("largest", WITHIN, "dominated")
    lines.append("| run | " + " | ".join(places) + " |")
    lines.append("|---|" + "---|" * len(places))
    for label, by_role in roles.items():
        cells = []
        for role in places:
            values = by_role.get(role, [])
            if not values:
                cells.append("—")
                continue
            accs = [acc for acc, _ in values]
            ces = [ce for _, ce in values if ce is not None]
            cell = f"{statistics.mean(accs):.1f} ({len(accs)}, {sum(a == 0 for a in accs)} at 0"
            cells.append(cell + (f"; CE {statistics.mean(ces):.1f})" if len(ces) == len(accs) else ")"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.gbg_groups", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--out", default=str(RESULTS / "gbg_groups.md"))
    args = parser.parse_args(argv)
    text = report(args.results)
    pathlib.Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
