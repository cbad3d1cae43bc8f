"""Benchmark harness for issue 10: `python -m bench seed|run|plans|all` (see bench/__main__.py)."""
