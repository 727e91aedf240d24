"""Benchmark harness of keras_longtail (run as `python -m benchmarks.run`)."""
