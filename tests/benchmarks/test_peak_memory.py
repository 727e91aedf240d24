import json

import pytest

from benchmarks import peak_memory


@pytest.mark.slow
def test_one_child_writes_peaks(tmp_path, capsys):
    """The plain-CE child alone, in its own subprocess, on the smallest batch that holds every class."""
    output = tmp_path / "peak_memory.json"
    code = peak_memory.main(["--methods", "ce", "--steps", "1", "--batch-size", "10", "--output", str(output)])
    assert code == 0
    result = json.loads(output.read_text())
    assert result["batch_size"] == 10 and result["steps"] == 1 and result["command"].startswith("python -m")
    assert result["tf_cpu_allocator_use_bfc"] == "true"
    entry = result["methods"]["ce"]
    assert list(result["methods"]) == ["ce"] and "error" not in entry
    assert 0 < entry["peak_mib_after_import"] <= entry["peak_mib_after_build"] <= entry["peak_mib_after_steps"]
    assert entry["delta_vs_ce_mib"] == 0 and entry["ratio_vs_ce"] == 1
    allocator = entry["tf_allocator_mib"]
    assert 0 < allocator["peak_steps"] <= allocator["peak_training"] and entry["tf_allocator_peak_ratio_vs_ce"] == 1
    assert "| ce |" in capsys.readouterr().out


def test_rejects_unknown_method_and_small_batch(tmp_path):
    with pytest.raises(SystemExit):
        peak_memory.main(["--methods", "ce,nope", "--output", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        peak_memory.main(["--batch-size", "9", "--output", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_failed_child_is_an_error_entry():
    # The child rejects the method (argparse, exit code 2): an "error" entry with its stderr, not a crash.
    entry = peak_memory.measure("not-a-method", steps=1, batch_size=10)
    assert list(entry) == ["error"] and "exited with 2" in entry["error"] and "--child" in entry["error"]


def test_children_use_the_bfc_allocator_unless_the_caller_says(monkeypatch):
    # Without a BFC allocator TensorFlow keeps no CPU allocator statistics on CPUs where oneDNN is off by default
    # (AVX2-only AMD EPYC: "Allocator stats not available for device 'CPU:0'").
    monkeypatch.delenv("TF_CPU_ALLOCATOR_USE_BFC", raising=False)
    assert peak_memory._child_env()["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    monkeypatch.setenv("TF_CPU_ALLOCATOR_USE_BFC", "false")
    assert peak_memory._child_env()["TF_CPU_ALLOCATOR_USE_BFC"] == "false"
