"""Guards against a Qt binding that corrupts the interpreter.

PySide6 6.12.0's Signal.emit() drops a reference to Py_True on every call; after a few hundred
emits Python aborts with "deallocating True or False" (or None) in the middle of a run. The
project excludes that release; this test fails loudly if it comes back.
"""

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(object)


def test_signal_emit_keeps_reference_counts(qapp):
    emitter, got = _Emitter(), []
    emitter.fired.connect(got.append)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(200):
        emitter.fired.emit(None)
    got.clear()
    after = sys.getrefcount(True), sys.getrefcount(False)
    assert after[0] >= before[0] - 5 and after[1] >= before[1] - 5, (before, after)
