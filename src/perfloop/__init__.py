"""perfloop: a performance-tuning workbench for Python teams."""

__version__ = "0.1.0"
