"""The tag map: validated YAML, errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from biopilot.config import ConfigError
from biopilot.line.tagmap import TagMap, load_tagmap

EXAMPLE = Path(__file__).parents[2] / "examples" / "line" / "tags.yaml"


def _write(tmp_path, text: str) -> Path:
    p = tmp_path / "tags.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_example_map_loads_with_nodeids_browse_paths_and_spectra():
    tm = load_tagmap(EXAMPLE)
    assert tm.units == ["BR-01", "BR-02", "BR-03"]
    kinds = {t.kind for t in tm.tags}
    assert kinds == {"scalar", "spectrum"}
    assert any(t.browse_path for t in tm.tags) and any(t.node for t in tm.tags)


@pytest.mark.parametrize(
    ("entry", "field", "rule"),
    [
        ("{unit: U, tag: ph}", "tags.0", "exactly one of node or browse_path"),
        ("{unit: U, tag: ph, node: 'ns=2;x=1'}", "tags.0.node", "not an OPC UA NodeId"),
        ("{unit: U, tag: Ph, node: 'i=1'}", "tags.0.tag", "lower_snake_case"),
        ("{unit: U, tag: ph, browse_path: [Objects]}", "tags.0.browse_path", "namespace:Name"),
        ("{unit: U, tag: s, kind: spectrum, node: 'i=1'}", "tags.0", "axis_node"),
        ("{unit: U, tag: ph, node: 'i=1', colour: red}", "tags.0.colour", "Extra inputs"),
        ("{unit: U, tag: ph, node: 'i=1', kind: image}", "tags.0.kind", "'scalar' or 'spectrum'"),
    ],
)
def test_bad_entry_is_refused_naming_the_field(tmp_path, entry, field, rule):
    with pytest.raises(ConfigError) as err:
        load_tagmap(_write(tmp_path, f"tags:\n  - {entry}\n"))
    assert f"{field}:" in str(err.value) and rule in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_duplicates_are_refused():
    twice = [{"unit": "U", "tag": "ph", "node": "i=1"}, {"unit": "U", "tag": "ph", "node": "i=2"}]
    with pytest.raises(ValueError, match="U/ph is mapped twice"):
        TagMap.model_validate({"tags": twice})
    same_node = [{"unit": "U", "tag": "a", "node": "i=1"}, {"unit": "U", "tag": "b", "node": "i=1"}]
    with pytest.raises(ValueError, match="node 'i=1' is mapped twice"):
        TagMap.model_validate({"tags": same_node})


def test_empty_and_malformed_files_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="tags"):
        load_tagmap(_write(tmp_path, "site: A\ntags: []\n"))
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_tagmap(_write(tmp_path, "tags: [unit: \n"))
