"""``timestamp``: calendar parts from graph-only integer arithmetic."""
import datetime

import numpy as np
import tensorflow as tf

from trainer.kinds.timestamp import month_from_days


def test_month_from_days_matches_calendar():
    days = np.arange(0, 20000, 37, dtype=np.int64)
    got = month_from_days(tf.constant(days)).numpy()
    want = [(datetime.date(1970, 1, 1) + datetime.timedelta(days=int(d))).month for d in days]
    assert list(got) == want
