"""The load scenario over real HTTP (issue 15, point 4): `python bench/load/run.py`."""
