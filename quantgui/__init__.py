"""QuantGUI: make PyTorch models smaller and faster by pointing and clicking."""

__version__ = "0.1.0"
