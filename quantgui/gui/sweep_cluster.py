"""The Sweep view's Cluster setting: where the sweep's points are measured.

"This machine" (the engine process, the default), "Ray: auto" (the cluster $RAY_ADDRESS names
in the engine's environment, else a private Ray on loopback) or "Ray: address" (a head's
HOST:PORT, or ray://HOST:PORT through the Ray Client). Kept in QSettings (`sweep/cluster`);
the engine's `sweep` request gets it as "cluster" and names what to install when the Ray extra
is missing."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QWidget

LOCAL, AUTO, ADDRESS = "local", "auto", "address"
CHOICES = [("This machine", LOCAL), ("Ray: auto", AUTO), ("Ray: address", ADDRESS)]


def check_address(text: str) -> str:
    """HOST:PORT or ray://HOST:PORT, stripped; ValueError with the reason otherwise."""
    text = text.strip()
    host, sep, port = text.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit() or "/" in host or not 0 < int(port) < 65536:
        raise ValueError("Cluster address: HOST:PORT or ray://HOST:PORT (e.g. 10.0.0.5:6379)")
    return text


class ClusterChoice(QWidget):
    changed = Signal(str)   # the stored value: "local", "auto" or the address

    def __init__(self, settings: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.combo = QComboBox()
        self.combo.setObjectName("sweepCluster")
        for text, key in CHOICES:
            self.combo.addItem(text, key)
        self.address = QLineEdit()
        self.address.setObjectName("sweepClusterAddress")
        self.address.setPlaceholderText("HOST:PORT")
        self.combo.setToolTip("Where the points are measured: this machine, or every machine "
                              "type of a Ray cluster (needs pip install \"quantgui[ray]\" where "
                              "QuantGUI runs)")
        self.address.setToolTip("The Ray head's address: HOST:PORT (this machine joins the "
                                "cluster) or ray://HOST:PORT (the Ray Client)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.combo)
        lay.addWidget(self.address, 1)
        stored = settings.cluster()
        key = stored if stored in (LOCAL, AUTO) else ADDRESS
        if key == ADDRESS:
            self.address.setText(stored)
        self.combo.setCurrentIndex(self.combo.findData(key))
        self._sync()
        self.combo.currentIndexChanged.connect(self._store)
        self.address.editingFinished.connect(self._store)

    def _sync(self) -> None:
        self.address.setVisible(self.combo.currentData() == ADDRESS)

    def _store(self, *_args: Any) -> None:
        self._sync()
        key = self.combo.currentData()
        if key == ADDRESS:
            try:
                key = check_address(self.address.text())
            except ValueError:
                return  # kept as it was until the address is whole; Run says what is wrong
        self.settings.set_cluster(key)
        self.changed.emit(key)

    def value(self) -> str:
        """The engine's "cluster" parameter; ValueError for an address that is not one."""
        key = self.combo.currentData()
        return check_address(self.address.text()) if key == ADDRESS else key
