"""Measuring the detector: generated anomaly suites, event-wise and NAB scoring, comparisons.

Pure functions over arrays (no files, no clock): `pipeline.evaluation` reads and writes,
these modules only compute.
"""
