"""``seqrnn train --config FILE`` with a settings file edited by hand: the file is named, not a flag the
user never gave."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli


@pytest.mark.parametrize("settings,says", [({"hidden": "x"}, "hidden must be of type int, not 'x'"),
                                           ({"settings": {"hidden": [1]}}, "hidden must be of type int"),
                                           ({"lr": -1}, "lr must be > 0"),
                                           ({"embedding-dim": 0}, "embedding_dim must be >= 1"),
                                           ({"precision": "float16"}, "precision must be one of")])
def test_a_bad_value_in_a_settings_file_names_the_file(capsys, tmp_path, settings, says):
    from seqrnn.config import read_settings
    from seqrnn.errors import InputError

    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(settings))
    with pytest.raises(InputError) as info:
        read_settings(str(path))
    assert str(info.value) == f"{path}: {says}" or str(info.value).startswith(f"{path}: {says}"), str(info.value)
    (tmp_path / "d").write_text("s1,a b c\ns2,a c b\n")
    code, _, err = run_cli(capsys, "train", tmp_path / "d", "--config", path, "--model-dir", tmp_path / "m")
    assert code == 2 and err.startswith(f"seqrnn train: error: {path}: ") and "--" not in err.split(": ", 2)[2], err


def test_settings_that_only_clash_with_flags_are_left_to_the_flags(tmp_path):
    """bidirectional alone is refused with the default mapping, but a flag may give the mapping: the file
    alone is not wrong."""
    from seqrnn.config import read_settings

    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"bidirectional": True, "hidden": 8}))
    assert read_settings(str(path)) == {"bidirectional": True, "hidden": 8}
