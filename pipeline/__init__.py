"""Vigil's I/O and running parts, in rooms by concern.

Imports point one way, and `tests/test_layers.py` enforces it:
`settings`, `errors` <- `contracts` <- `kafka`, `state` <- `models` <- `worker` <- `api`
<- `cli`, `local`, `evaluation`; a room imports only rooms to its left (and `detectors`,
which never imports `pipeline`), so the production path (`contracts` to `api`) never
loads the local stack or the evaluation code.
"""
