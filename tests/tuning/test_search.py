"""OII-guided bisection (DIBE paper Fig. 4, Appendix B) and grid search, with fake evaluate functions."""

from __future__ import annotations

import json

import pytest

from monai_imbalance.tuning import format_trace, grid_search, load_trace, oii_guided_search


class FakeTraining:
    """``evaluate(alpha)`` returning fixed metrics per alpha, counting the models it 'trains'."""

    def __init__(self, table, fail_after: int | None = None):
        self.table, self.calls, self.fail_after = table, [], fail_after

    def __call__(self, alpha):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("training interrupted")
        self.calls.append(alpha)
        return dict(self.table[alpha])


def smooth_oii(alpha):
    """A monotone response: OII rises with alpha, the FP weight (fewer false positives, more false negatives): the
    paper's Fig. 8, where OII falls as its alpha (our beta) rises."""
    return {"oii": alpha - 0.1, "iou": 0.6 - (alpha - 0.7) ** 2, "pa": 1.0 - alpha / 2}


def test_appendix_b_example_1_dibe_dis_segnet():
    # paper: alpha 0.5 (OII 0.475 > 0.4) -> 0.7 (OII 0.322, inside); in our convention alpha 0.5 -> 0.3
    fake = FakeTraining(
        {0.5: {"oii": 0.475, "iou": 0.442, "pa": 0.713}, 0.3: {"oii": 0.322, "iou": 0.477, "pa": 0.709}}
    )
    trace, chosen = oii_guided_search(fake)
    assert fake.calls == [0.5, 0.3] and chosen == 0.3
    assert [r["alpha"] for r in trace] == [0.5, 0.3] and [r["beta"] for r in trace] == [0.5, 0.7]
    assert [r["step"] for r in trace] == [1, 2] and [r["in_interval"] for r in trace] == [False, True]
    assert trace[1]["iou"] == 0.477 and trace[1]["pa"] == 0.709


def test_appendix_b_example_2_tversky_unet():
    # paper: alpha 0.5 (OII 0.071) -> 0.3 (0.118) -> 0.2 (0.382, inside); ours: 0.5 -> 0.7 -> 0.8
    table = {
        0.5: {"oii": 0.071, "iou": 0.642, "pa": 0.782},
        0.7: {"oii": 0.118, "iou": 0.642, "pa": 0.798},
        0.8: {"oii": 0.382, "iou": 0.636, "pa": 0.840},
    }
    fake = FakeTraining(table)
    result = oii_guided_search(fake, interval=(0.3, 0.4), low=0.1, high=0.9)
    assert fake.calls == [0.5, 0.7, 0.8] and result.chosen == 0.8
    assert [1 - r["alpha"] for r in result.trace] == pytest.approx([0.5, 0.3, 0.2])  # the paper's own sequence


def test_bisection_path_stops_after_max_steps_and_picks_the_closest():
    fake = FakeTraining({a: {"oii": 0.9 - a / 10} for a in (0.5, 0.3, 0.2, 0.15, 0.125)})
    trace, chosen = oii_guided_search(fake, max_steps=5)
    assert fake.calls == [0.5, 0.3, 0.2, 0.15, 0.125]  # OII always above: always the lower half
    assert not any(r["in_interval"] for r in trace) and chosen == 0.5  # 0.85 is the closest to (0.3, 0.4)


def test_bisection_both_directions_and_interval_bounds():
    trace, chosen = oii_guided_search(smooth_oii, interval=(0.25, 0.35), max_steps=6)
    assert [r["alpha"] for r in trace] == [0.5, 0.3, 0.4] and chosen == 0.4  # above, below, inside
    # an OII exactly on m1 is not inside: too many false negatives, lower alpha
    trace, _ = oii_guided_search(lambda a: {"oii": 0.4 if a == 0.5 else 0.35}, max_steps=2)
    assert [r["alpha"] for r in trace] == [0.5, 0.3]


def test_grid_search_trains_k_plus_one_models_and_selects_by_iou():
    fake = FakeTraining({a: smooth_oii(a) for a in (0.1, 0.3, 0.5, 0.7, 0.9)})
    trace, chosen = grid_search(fake, k=4)
    assert fake.calls == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9]) and len(trace) == 5
    assert chosen == 0.7  # best IoU of the fake response
    _, by_oii = grid_search(smooth_oii, interval=(0.35, 0.45), k=4, select=None)
    assert by_oii == 0.5  # the only OII inside (0.35, 0.45)
    _, smallest = grid_search(smooth_oii, k=4, select="pa", mode="min")
    assert smallest == 0.9


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_resume_skips_finished_evaluations(tmp_path, suffix):
    table = {a: smooth_oii(a) for a in (0.5, 0.3, 0.4, 0.35)}
    path = tmp_path / f"trace{suffix}"
    interrupted = FakeTraining(table, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        oii_guided_search(interrupted, interval=(0.22, 0.28), trace_file=path)
    assert interrupted.calls == [0.5, 0.3] and len(load_trace(path)) == 2
    resumed = FakeTraining(table)
    trace, chosen = oii_guided_search(resumed, interval=(0.22, 0.28), trace_file=path)
    assert resumed.calls == [0.4, 0.35]  # the two stored evaluations are not run again
    fresh_trace, fresh_chosen = oii_guided_search(smooth_oii, interval=(0.22, 0.28))
    assert chosen == fresh_chosen == 0.35 and [r["alpha"] for r in trace] == [r["alpha"] for r in fresh_trace]
    stored = load_trace(path)
    assert [r["alpha"] for r in stored] == [0.5, 0.3, 0.4, 0.35]
    assert stored[0]["oii"] == pytest.approx(0.4) and stored[-1]["in_interval"] is True
    # done: a third run trains nothing
    again = FakeTraining(table)
    assert oii_guided_search(again, interval=(0.22, 0.28), trace_file=path).chosen == 0.35 and again.calls == []


def test_grid_reuses_the_bisection_trace_file(tmp_path):
    path = tmp_path / "alpha.json"
    oii_guided_search(smooth_oii, interval=(0.25, 0.35), trace_file=path)  # 0.5, 0.3, 0.4
    grid = FakeTraining({a: smooth_oii(a) for a in (0.1, 0.3, 0.5, 0.7, 0.9)})
    trace, _ = grid_search(grid, k=4, trace_file=path)
    assert grid.calls == [0.1, 0.7, 0.9] and len(trace) == 5
    assert sorted(r["alpha"] for r in json.loads(path.read_text())) == [0.1, 0.3, 0.4, 0.5, 0.7, 0.9]


def test_errors():
    with pytest.raises(ValueError, match="m0 < m1"):
        oii_guided_search(smooth_oii, interval=(0.4, 0.3))
    with pytest.raises(ValueError, match="low must be below high"):
        grid_search(smooth_oii, low=0.9, high=0.1)
    with pytest.raises(KeyError, match="'oii'"):
        oii_guided_search(lambda a: {"iou": 0.5})
    with pytest.raises(TypeError, match="mapping"):
        oii_guided_search(lambda a: 0.3)
    with pytest.raises(ValueError, match="max_steps"):
        oii_guided_search(smooth_oii, max_steps=0)


def test_format_trace_is_the_table_3_layout():
    trace, _ = oii_guided_search(smooth_oii, interval=(0.25, 0.35))
    text = format_trace(trace, ["step", "alpha", "oii", "iou", "pa"], title="OII guidance")
    lines = text.splitlines()
    assert lines[0] == "OII guidance" and lines[1].split() == ["step", "alpha", "oii", "iou", "pa"]
    assert len(lines) == 2 + len(trace) and lines[2].split()[:3] == ["1", "0.500", "0.400"]
