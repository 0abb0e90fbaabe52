"""Soft labels ``pl`` follow the observations' form (statespace.validation's sequence rule)."""

import numpy as np
import pytest

from hmm import GaussianHMM
from statespace.errors import ShapeError


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    y = np.concatenate([rng.normal(-2, 1, 30), rng.normal(2, 1, 30)])
    model = GaussianHMM(2, 1)
    model.fit(y, max_iter=5, progress=False, rng=0)
    pl = np.full((60, 2), 0.5)
    pl[:10, 1] = 0.0  # the first ten steps are known to be state 0
    return model, y, pl


def test_nested_list_equals_the_array_for_one_sequence(fitted):
    model, y, pl = fitted
    assert model.log_likelihood(y, pl=pl.tolist()) == model.log_likelihood(y, pl=pl)


def test_batch_takes_one_item_per_sequence_and_none_means_no_knowledge(fitted):
    model, y, pl = fitted
    both = model.log_likelihood([y, y[:40]], pl=[pl, None])
    assert both == pytest.approx(model.log_likelihood(y, pl=pl) + model.log_likelihood(y[:40]), rel=1e-12)


@pytest.mark.parametrize(
    "bad",
    [
        lambda pl: np.stack([pl, pl]),  # a 3-D array is not a batch
        lambda pl: pl,  # one array for two sequences
    ],
)
def test_batch_plausibilities_must_be_a_list(fitted, bad):
    model, y, pl = fitted
    with pytest.raises(ShapeError, match="pl"):
        model.log_likelihood([y, y], pl=bad(pl))


def test_single_sequence_refuses_a_wrapped_array(fitted):
    model, y, pl = fitted
    with pytest.raises(ShapeError, match="pl"):
        model.log_likelihood(y, pl=[pl])
