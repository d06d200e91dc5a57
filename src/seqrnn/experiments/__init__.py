"""Experiments over many models or settings: ``compare`` and ``tune``."""
