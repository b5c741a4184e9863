import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import logrank_test

from mustsurv.evaluate.km import km_figure, median_split


def test_km_figure_reports_lifelines_logrank(tmp_path):
    rng = np.random.default_rng(3)
    risk = rng.normal(size=120)
    time = rng.exponential(30 * np.exp(-risk))
    event = rng.uniform(size=120) < 0.7
    pred = pd.DataFrame({"risk": risk, "time": time, "event": event.astype(int)})
    p = km_figure(pred, "demo", tmp_path / "km.png")
    high = median_split(risk)
    expected = logrank_test(time[high], time[~high], event[high], event[~high]).p_value
    assert p == pytest.approx(expected)
    assert p < 0.01  # the risk carries signal, the split separates
    assert (tmp_path / "km.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert high.sum() == 60
