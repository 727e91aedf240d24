import sys

import pytest

from benchmarks.studies import pytorch_sgd_agrees


def test_a_budget_without_a_constant_stretch_before_the_drop_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        pytorch_sgd_agrees.main(["--epochs", "5", "--steps-per-epoch", "10", "--output", str(tmp_path / "x.json")])
    assert "Expected --epochs x --steps-per-epoch >= 200" in capsys.readouterr().err


def test_without_torch_it_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(SystemExit):
        pytorch_sgd_agrees.main(["--output", str(tmp_path / "x.json")])
    assert "pip install torch==2.13.0" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
