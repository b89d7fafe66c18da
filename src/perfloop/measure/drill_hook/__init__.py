"""The directory perfloop puts first on ``PYTHONPATH`` while a drill runs.

Only its ``sitecustomize`` matters: Python imports it at start-up in every process perfloop
starts for a benchmark during a drill (see :mod:`perfloop.workflows.drills`). Nothing imports
this package for its contents; perfloop only needs its path.
"""
