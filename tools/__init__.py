"""Operator tools that run against a live wio stack (``python -m tools.soak``, ``python -m tools.hostile``)."""
