"""Evaluation glue: files, command-line reports and the markdown report.

The maths lives in `detectors.evaluation`; this package reads, writes and prints.
"""
