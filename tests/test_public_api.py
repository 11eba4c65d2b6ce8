"""The public names: importable from the package, and documented in the README."""

from pathlib import Path

import pytest

import django_rt

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", django_rt.__all__)
def test_public_name_is_importable_and_documented(name):
    assert getattr(django_rt, name) is not None
    assert f"`{name}" in README, f"{name} is not documented in the README"


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        django_rt.Nope  # noqa: B018
