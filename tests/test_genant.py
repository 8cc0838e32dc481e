"""Genant rules: every band edge, each morphology, crush against the neighbours."""

import pytest

from screening_node.analysis.genant import genant, grade_from_loss


@pytest.mark.parametrize("loss, grade", [
    (0.0, 0), (0.1999, 0), (0.20, 1), (0.2499, 1), (0.25, 2), (0.40, 2), (0.4001, 3), (0.9, 3)])
def test_band_edges(loss, grade):
    assert grade_from_loss(loss) == grade


def _h(a, m, p):
    return {"anterior": a, "middle": m, "posterior": p}


def test_normal_body_is_grade_0_normal():
    g = genant(_h(25, 24, 26), [26, 26])
    assert (g.grade, g.morphology) == (0, "normal")
    assert g.height_loss == pytest.approx(1 - 24 / 26, abs=1e-4)


def test_wedge_anterior_lowest():
    g = genant(_h(18, 22, 26))
    assert (g.grade, g.morphology) == (2, "wedge")
    assert g.height_loss == pytest.approx(1 - 18 / 26, abs=1e-4)


def test_biconcave_middle_lowest():
    g = genant(_h(26, 15, 26))
    assert (g.grade, g.morphology) == (3, "biconcave")


def test_crush_all_heights_low_against_neighbours():
    # shape alone is normal (loss 4 %), but every height is ~30 % below the neighbours' posterior heights
    g = genant(_h(18, 17.5, 18.2), [26, 26])
    assert g.morphology == "crush"
    assert g.grade == 2
    assert g.height_loss == pytest.approx(1 - 18.2 / 26, abs=1e-4)


def test_crush_needs_neighbours():
    g = genant(_h(18, 17.5, 18.2), [])
    assert (g.grade, g.morphology) == (0, "normal")


def test_height_loss_is_a_fraction():
    g = genant(_h(10, 20, 30))
    assert 0 <= g.height_loss <= 1


def test_non_positive_heights_rejected():
    with pytest.raises(ValueError):
        genant(_h(0, 0, 0))
