"""Testing/train_liver_net.py without PyTorch: which seed each network is trained from."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train_liver_net import STEPS, main, network_seeds


def test_each_network_gets_its_own_seed_unless_one_is_given_for_all():
    assert network_seeds(list(STEPS), None) == list(range(len(STEPS)))  # the shipped pair: seeds 0 and 1
    assert network_seeds([1500, 3000], [7]) == [7, 7]
    assert network_seeds([3000, 3000], [4, 2]) == [4, 2]


def test_a_seed_count_that_fits_no_network_count_is_refused_before_training(tmp_path, capsys):
    with pytest.raises(ValueError, match="one per --steps value"):
        network_seeds([10, 10, 10], [1, 2])
    with pytest.raises(SystemExit):  # argparse's error, before torch is imported or anything is written
        main(["--out", str(tmp_path / "net"), "--steps", "10", "10", "10", "--seed", "1", "2"])
    assert "one per --steps value (3), not 2" in capsys.readouterr().err
    assert not (tmp_path / "net").exists()
