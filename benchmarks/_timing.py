"""The one timing utility of the cost benchmarks (step time, restart cost, scale).

Every cost benchmark times its variants the same way: a warm-up call each (the tracing), then
interleaved rounds (each round runs every variant in turn, so that a change in the machine's
load hits all of them alike), and ratios to a baseline rather than absolute times (the
machines are shared). The helpers here are that loop and those ratios; each benchmark keeps
its own choice of statistic (median of per-round ratios, or ratio of medians) as its results
have always reported it.
"""

import statistics
import time


def timed(fn, clock=None):
    """(fn's return value, seconds it took on `clock`, by default `time.perf_counter`)."""
    clock = time.perf_counter if clock is None else clock
    start = clock()
    value = fn()
    return value, clock() - start


def best_of(fn, repeats=1):
    """(fn's last return value, the fastest of `repeats` calls in seconds)."""
    best = value = None
    for _ in range(repeats):
        value, elapsed = timed(fn)
        best = elapsed if best is None else min(best, elapsed)
    return value, best


def first_calls(fns):
    """{name: seconds of one call of fns[name]}, in order: the first call of a fresh model is its tracing."""
    return {name: timed(fn)[1] for name, fn in fns.items()}


def interleaved(fns, rounds, calls=1, steps_per_call=1, cpu=False, on_round=None):
    """Times `fns` ({name: fn}) in `rounds` interleaved rounds.

    In each round every fn runs `calls` times in turn (`calls` an int or {name: int}); the round's
    figure is the elapsed time / (calls x `steps_per_call`), i.e. seconds per step when one call
    runs `steps_per_call` steps. `on_round(index, wall)` is called after each round.

    Returns:
        {name: [seconds per step, one per round]} on the wall clock (`time.perf_counter`), or with
        `cpu=True` the pair (wall, CPU) where CPU is the process's CPU time (`time.process_time`,
        all threads) per step.
    """
    wall, processor = {name: [] for name in fns}, {name: [] for name in fns}
    for index in range(rounds):
        for name, fn in fns.items():
            count = calls[name] if isinstance(calls, dict) else calls
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(count):
                fn()
            wall[name].append((time.perf_counter() - wall_start) / (count * steps_per_call))
            processor[name].append((time.process_time() - cpu_start) / (count * steps_per_call))
        if on_round is not None:
            on_round(index, wall)
    return (wall, processor) if cpu else wall


def median_of_ratios(times, name, baseline):
    """The median over rounds of times[name] / times[baseline] (round by round)."""
    return statistics.median(a / b for a, b in zip(times[name], times[baseline]))


def ratio_of_medians(times, name, baseline):
    """median(times[name]) / median(times[baseline])."""
    return statistics.median(times[name]) / statistics.median(times[baseline])


def per_round_ratios(times, name, baseline, digits=3):
    """[times[name][r] / times[baseline][r], rounded, for each round r]."""
    return [round(a / b, digits) for a, b in zip(times[name], times[baseline])]


def machine():
    """`"<arch>, <n> cores, <CPU model>"`: what a timing depends on (the CPU model from /proc/cpuinfo on Linux).

    The CPU matters: ResNet-32 trained about 3x slower on an AVX2-only AMD EPYC than on the AVX-512 machine most
    results were measured on, so seconds from different models are not comparable."""
    import os
    import platform

    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores, {model or 'unknown CPU'}"
