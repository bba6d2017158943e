"""bubblesim: Monte Carlo cascade-default risk in the circular financing of AI compute."""

__version__ = "0.1.0"
