"""`python -m quantgui.engine`: the engine process on stdin/stdout (protocol.py)."""

import os
import signal
import sys

from .server import main

if __name__ == "__main__":
    # Ctrl-C in the terminal that started the GUI reaches its whole process group: the client
    # decides what a Ctrl-C means (it cancels or shuts the engine down), not the signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The window comes first: on a machine with as many busy threads as cores (the timer runs
    # the measured threads flat out), the GUI process otherwise waits for a core and its event
    # loop stalls though it has nothing to do. A lower priority changes no measurement on an
    # otherwise idle machine; where other work competes, the engine yields to it, as a
    # background job should.
    try:
        os.nice(5)
    except OSError:
        pass
    code = main()
    sys.stderr.flush()
    # Not a normal interpreter exit: a request stuck in a C++ call (a daemon thread) or torch's
    # own threads must not hold the process once the client asked it to go.
    os._exit(code)
