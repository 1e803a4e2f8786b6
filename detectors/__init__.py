"""The maths of detection: pure functions of (inputs, states), importing only torch,
numpy and river — never `pipeline` (I/O lives there)."""
