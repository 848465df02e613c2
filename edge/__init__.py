"""The loyalty club's edge agent.

This package is imported by MicroPython too (``micropython -m edge.rules_cli``), so this
file stays plain: no imports, no annotations.
"""

__version__ = "0.1.0"
