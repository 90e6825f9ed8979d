"""`python -m quantgui.engine`: the engine process on stdin/stdout (protocol.py)."""

import os
import sys

from .server import main

if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Not a normal interpreter exit: a request stuck in a C++ call (a daemon thread) or torch's
    # own threads must not hold the process once the client asked it to go.
    os._exit(code)
