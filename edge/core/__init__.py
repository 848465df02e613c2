"""The MicroPython-compatible core of the edge agent.

Everything under ``edge.core`` runs unchanged on CPython 3.11 and on the MicroPython
Unix port, with byte-identical results: the rule engine, phone normalisation, Jalali
date arithmetic and record payload building.  The rules for code here:

* plain code: no dataclasses, no ``typing`` at run time, no ``decimal``, no
  ``str.zfill``/``rjust``/``isdecimal``, no reliance on dict order;
* integers only for money and points; ``type(x) is int`` (MicroPython's bool is not
  an int subclass, CPython's is, so ``isinstance(True, int)`` differs);
* explicit checks that raise the typed errors of :mod:`edge.core.errors`, never
  ``assert`` (stripped by ``-O``).

The public API is typed for CPython callers by the ``.pyi`` stubs beside each module.
"""
