"""How labels are found in the elements of a labelled `tf.data.Dataset`."""


def label_of(element):
    """The label of a `(features, label, ...)` tuple or a `{"label": ...}` dict."""
    if isinstance(element, dict):
        if "label" not in element:
            raise ValueError(
                "Expected dataset elements to be `(features, label)` tuples or dicts with "
                f"a 'label' key. Received a dict with keys {sorted(element)}"
            )
        return element["label"]
    if isinstance(element, (tuple, list)) and len(element) >= 2:
        return element[1]
    raise ValueError(
        "Expected dataset elements to be `(features, label)` tuples or dicts with a "
        f"'label' key. Received an element of type {type(element).__name__}"
    )


def check_element_spec(element_spec, argument="dataset"):
    """Checks the spec up front, so a wrong layout fails before iteration."""
    try:
        spec = label_of(element_spec)
    except ValueError as error:
        raise ValueError(f"Bad `{argument}`: {error}") from None
    if spec.shape.rank not in (None, 0):
        raise ValueError(
            f"Expected `{argument}` to hold one integer label per element (scalar labels). "
            f"Received a label of shape {spec.shape}; batched datasets must be unbatched first."
        )
    if not spec.dtype.is_integer:
        raise TypeError(
            f"Expected integer labels in `{argument}`. Received labels of dtype {spec.dtype.name}"
        )
