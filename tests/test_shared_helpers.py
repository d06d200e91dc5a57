"""Helpers that replaced code written twice: distinct keys, JSON input files read with one error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqrnn.config import read_settings
from seqrnn.data.distinct import distinct, sequence_keys
from seqrnn.errors import InputError


def test_distinct_first_occurrences_and_inverse():
    first, inverse = distinct(["a", "b", "a", "c", "b", "a"])
    assert first == [0, 1, 3]
    assert inverse.tolist() == [0, 1, 0, 2, 1, 0]
    assert np.bincount(inverse).tolist() == [3, 2, 1]
    assert distinct([])[0] == [] and distinct([])[1].shape == (0,)


def test_sequence_keys_tell_a_finished_session_from_an_unfinished_one():
    a = np.array([4, 5], np.int64)
    keys = sequence_keys([a, a.copy(), a], [True, True, False])
    assert distinct(keys)[1].tolist() == [0, 0, 1]


@pytest.mark.parametrize("text", ["{", b"\xff\xfe{}"])
def test_settings_and_search_space_files_that_are_not_json_name_the_file(tmp_path, text):
    from seqrnn.experiments.tune import load_space

    path = tmp_path / "bad.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    for read, what in ((read_settings, "settings file"), (load_space, "search space")):
        with pytest.raises(InputError, match="not JSON") as err:
            read(str(path))
        assert err.value.path == str(path) and what in str(err.value)


def test_a_settings_file_that_is_not_json_exits_2(capsys, tmp_path):
    from seqrnn.cli import main

    cfg = tmp_path / "cfg.json"
    cfg.write_text("{hidden: 12}")
    code = main(["train", str(tmp_path / "none.txt"), "--config", str(cfg), "--model-dir", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and str(cfg) in err and "not JSON" in err


def test_read_settings_still_reads_a_model_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"format": "seqrnn-model", "settings": {"embedding-dim": 4}}))
    assert read_settings(str(path)) == {"embedding_dim": 4}
