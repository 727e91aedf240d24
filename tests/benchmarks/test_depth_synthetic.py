import json

from benchmarks import depth_synthetic


def test_small_run_writes_every_bin_and_applies_the_hook(tmp_path):
    wrapped = []

    def wrap_model(model):
        wrapped.append(model.name)
        return model

    depth_synthetic.register_variant("hooked", wrap_model)
    try:
        output = tmp_path / "depth.json"
        results = depth_synthetic.run(("hooked",), output=output, verbose=0, image_size=(32, 64),
                                      width_multiplier=0.25, train_scenes=20, test_scenes=10, epochs=1)
    finally:
        depth_synthetic.VARIANTS.pop("hooked")
    assert wrapped == ["depth_unet"]
    saved = json.loads(output.read_text())
    assert saved == json.loads(json.dumps(results))
    for name in ("hooked",):
        mre = saved["variants"][name]["mre"]
        assert list(mre) == ["mre_lt_20", "mre_20_40", "mre_40_60", "mre_gt_60", "mre_total"]
        assert all(value >= 0 for value in mre.values())
    assert abs(sum(saved["test_pixel_share_percent"].values()) - 100) < 0.1
    table = depth_synthetic.format_table(results)
    assert "hooked" in table and "gt_60" in table
