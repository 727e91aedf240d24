import pytest

from benchmarks import _timing


class FakeClock:
    """A clock advanced by the timed functions themselves, so the timings are exact."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_interleaved_runs_each_function_its_calls_per_round_in_turn(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(_timing.time, "perf_counter", clock)
    monkeypatch.setattr(_timing.time, "process_time", clock)
    order = []

    def step(name, seconds):
        def run():
            order.append(name)
            clock.now += seconds
        return run

    rounds = []
    wall, cpu = _timing.interleaved({"plain": step("plain", 1.0), "method": step("method", 3.0)}, rounds=2,
                                    calls={"plain": 2, "method": 1}, steps_per_call=4, cpu=True,
                                    on_round=lambda index, times: rounds.append((index, len(times["plain"]))))
    assert order == ["plain", "plain", "method"] * 2  # interleaved: every round runs each in turn
    assert wall == {"plain": [0.25, 0.25], "method": [0.75, 0.75]}  # elapsed / (calls x steps per call)
    assert cpu == wall and rounds == [(0, 1), (1, 2)]


def test_ratios_follow_their_definitions():
    times = {"plain": [1.0, 2.0, 4.0], "method": [2.0, 2.0, 12.0]}
    assert _timing.median_of_ratios(times, "method", "plain") == 2.0  # median of [2, 1, 3]
    assert _timing.ratio_of_medians(times, "method", "plain") == 1.0  # 2 / 2
    assert _timing.per_round_ratios(times, "method", "plain") == [2.0, 1.0, 3.0]


def test_best_of_and_first_calls(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(_timing.time, "perf_counter", clock)
    durations = iter([3.0, 1.0, 2.0])

    def work():
        clock.now += next(durations)
        return "done"

    assert _timing.best_of(work, repeats=3) == ("done", 1.0)
    monkeypatch.setattr(_timing, "timed", lambda fn, clock=None: (fn(), 5.0))
    assert _timing.first_calls({"a": lambda: None}) == {"a": 5.0}


@pytest.mark.parametrize("module", ["overhead", "peak_memory", "restart_cost", "gbg_overhead", "gradtail_overhead",
                                    "gradtail_depth_overhead", "gradtail_scale", "gbg_scale"])
def test_the_cost_benchmarks_share_one_timing_loop_and_import_no_other_benchmark(module):
    import ast
    import pathlib

    source = (pathlib.Path(_timing.__file__).parent / f"{module}.py").read_text()
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "benchmarks":
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("benchmarks."):
            imported.add(node.module.split(".")[1])
    assert imported <= {"_methods", "_timing"}, imported  # no circle (overhead <-> peak_memory was one)
    assert "perf_counter()" not in source and "process_time()" not in source  # their clocks are _timing's
