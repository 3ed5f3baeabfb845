"""A small TRE-style analysis: read inputs from /safe_data when they are
there, write results to /safe_outputs, never touch the network."""
import os
import sys

import numpy as np
import pandas as pd

SAFE_DATA = "/safe_data/measurements.csv"

if os.path.exists(SAFE_DATA):
    frame = pd.read_csv(SAFE_DATA)
else:
    frame = pd.DataFrame({
        "site": ["a", "a", "b", "b", "b"],
        "value": np.array([1.0, 3.0, 2.0, 4.0, 6.0]),
    })

summary = frame.groupby("site")["value"].agg(["count", "mean"]).reset_index()
summary.to_csv(sys.stdout, index=False)
if os.access("/safe_outputs", os.W_OK):
    summary.to_csv("/safe_outputs/summary.csv", index=False)
