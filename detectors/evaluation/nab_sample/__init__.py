"""Six NAB series with their labelled windows, shipped so that the demo, the backtest and
the evaluation work from a plain clone (no `../shared` beside it).

One file per NAB category (artificial with and without anomalies, AWS CloudWatch, ad
exchange, known cause, traffic), about 500 KB in all, copied unchanged from NAB v1.1 with
the matching entries of its `windows.json` and `anomaly_points.json`; NAB is MIT-licensed
by Numenta (LICENSE beside this file). The layout is NAB's own (`<category>/<file>.csv`),
so every reader of a NAB folder reads this one too. A fuller split adds to it
(`vigil demo --nab-dir`, VIGIL_NAB_DIR); the detector was never tuned on these files.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent
"""The sample's root folder: `<category>/<file>.csv`, `windows.json`, `anomaly_points.json`."""
