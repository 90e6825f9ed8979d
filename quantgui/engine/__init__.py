"""The engine process: QuantGUI's engine served over a line protocol (`protocol.py`, torch-free)
by `server.py` (`python -m quantgui.engine`, `quantgui-cli serve`). The GUI talks to it through
`quantgui.gui.engine_client` and imports only `protocol` from here."""
