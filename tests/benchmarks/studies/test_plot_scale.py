import json

import pytest

from benchmarks.studies import plot_scale


def _write(directory, name, content):
    (directory / name).write_text(json.dumps(content))


def _fake_inputs(directory, gradtail=True):
    _write(directory, "overhead.json", {"resnet32_step": {}, "gala_scale": {"classes": {
        "1000": {"gala_over_ce": 1.2}, "100": {"gala_over_ce": 1.1}}}})
    _write(directory, "scale_gbg.json", {
        "min_norm_group_solve_seconds": {"groups": 4, "parameters": 470_000, "seconds_including_gram": 0.003},
        "rows": [{"classes": 100, "groups": 4, "grouping_seconds": 0.3, "min_norm_per_class_objectives_seconds": 0.01},
                 {"classes": 8142, "groups": 4, "grouping_seconds": 23.0,
                  "min_norm_per_class_objectives_seconds": None}]})
    if gradtail:
        _write(directory, "scale_gradtail.json", {"rows": [
            {"hidden_units": 2048, "selected_parameters": 1_071_114, "gradtail_over_plain": 3.1,
             "gradtail_over_plain_cpu_time": 2.1},
            {"hidden_units": 64, "selected_parameters": 33_482, "gradtail_over_plain": 2.7,
             "gradtail_over_plain_cpu_time": 2.0}]})


def test_writes_png_with_one_panel_per_curve(tmp_path, capsys):
    _fake_inputs(tmp_path)
    output = tmp_path / "plots" / "scale.png"
    assert plot_scale.main(["--inputs", str(tmp_path), "--output", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and output.stat().st_size > 10_000
    assert f"wrote {output} (4 panels" in capsys.readouterr().out
    gradtail = plot_scale.load_panels(tmp_path)[0][3]
    assert gradtail["x"] == [33_482, 1_071_114] and gradtail["y"] == [2.0, 2.1]  # sorted; CPU-time ratio first
    assert gradtail["second"] == ("wall time", [2.7, 3.1])


def test_curves_sorted_and_missing_values_dropped(tmp_path):
    _fake_inputs(tmp_path, gradtail=False)
    panels, notes = plot_scale.load_panels(tmp_path)
    assert [p["x"] for p in panels] == [[100, 1000], [100, 8142], [100]]  # G = K solve skipped at 8142
    assert panels[0]["y"] == [1.1, 1.2] and panels[2]["reference"][0] == 0.003
    assert len(notes) == 1 and "scale_gradtail.json" in notes[0]


def test_no_inputs_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        plot_scale.main(["--inputs", str(tmp_path), "--output", str(tmp_path / "scale.png")])
    assert "--inputs" in capsys.readouterr().err and not (tmp_path / "scale.png").exists()
