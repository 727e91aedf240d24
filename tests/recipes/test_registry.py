import pytest

from keras_longtail import cli
from keras_longtail import recipes


@pytest.fixture
def scratch_method():
    """Registers a method for one test and removes it afterwards (the registry is process-wide)."""
    names = []

    def register(method):
        names.append(method.name)
        return recipes.register_method(method)

    yield register
    for name in names:
        recipes.METHODS.pop(name, None)


def test_every_method_of_the_toolkit_is_registered_once_in_the_command_line_order():
    assert list(recipes.METHODS) == ["ce", "gala", "gradtail", "gbg", "async", "wb"]
    assert cli.METHODS == tuple(recipes.METHODS)
    for name, method in recipes.METHODS.items():
        assert method.name == name and method.description and callable(method.train)
    assert recipes.get_method("gala").defaults == {"gala_accumulation": "paper"}
    assert recipes.get_method("gbg").defaults == {"num_groups": 4, "gbg_mode": "backbone", "gbg_options": None}


def test_defaults_are_read_only():
    with pytest.raises(TypeError):
        recipes.get_method("gradtail").defaults["gradtail_max_weight"] = 5.0


def test_unknown_method_says_what_was_expected_and_received():
    with pytest.raises(ValueError, match=r"Expected `method` in \['ce', 'gala', .*'wb'\]. Received: method='nope'"):
        recipes.get_method("nope")
    with pytest.raises(ValueError, match=r"Expected `method` in .* Received: method='nope'"):
        recipes.run_training(method="nope", epochs=1, verbose=0)


def test_unknown_keyword_argument_is_named():
    with pytest.raises(TypeError, match=r"Expected keyword arguments .* Received: gala_acumulation='paper'"):
        recipes.run_training(method="gala", gala_acumulation="paper", epochs=1, verbose=0)


def test_an_option_of_one_method_alone_is_refused_with_another():
    with pytest.raises(ValueError, match=r"`stage_one_model` is for method='wb'. Received: method='gala'"):
        recipes.run_training(method="gala", stage_one_model="stage1.keras", epochs=1, verbose=0)


def test_registration_rejects_duplicates_conflicting_defaults_and_non_methods(scratch_method):
    train = recipes.get_method("ce").train
    with pytest.raises(ValueError, match="Received: name='ce'"):
        recipes.register_method(recipes.Method("ce", "again", defaults={}, train=train))
    with pytest.raises(ValueError, match=r"gala_accumulation.*Received: gala_accumulation='official'"):
        recipes.register_method(recipes.Method("gala-2", "GALA again", defaults={"gala_accumulation": "official"},
                                               train=train))
    with pytest.raises(ValueError, match="Expected a `keras_longtail.recipes.Method`"):
        recipes.register_method("ce")
    with pytest.raises(ValueError, match="Expected every `exclusive` option"):
        recipes.Method("x", "x", defaults={}, train=train, exclusive=("y",))
    with pytest.raises(ValueError, match="Expected `train` to be callable"):
        recipes.Method("x", "x", defaults={}, train=None)
    assert "gala-2" not in recipes.METHODS


def test_a_registered_method_runs_through_run_training_and_the_command_line(scratch_method, capsys):
    calls = []

    def train_recorded(job, options):
        calls.append(dict(options))
        job.extra["scale_seen"] = options["scale"]
        return job.fit(job.network, label="recorded")

    scratch_method(recipes.Method("recorded", "records its options", defaults={"scale": 1.0},
                                  train=train_recorded, check=lambda options: None,
                                  results=lambda options: {"scale": options["scale"]}))
    results = recipes.run_training(method="recorded", scale=2.0, epochs=1, steps_per_epoch=1, verbose=0)
    assert calls == [{"scale": 2.0}]
    assert results["method"] == "recorded" and results["scale"] == 2.0 and results["scale_seen"] == 2.0
    # The command line offers it too (its option would need a flag of its own).
    assert cli.build_parser().parse_args(["train", "--method", "recorded"]).method == "recorded"
