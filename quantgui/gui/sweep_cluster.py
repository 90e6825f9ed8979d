"""The Cluster setting of the Sweep and Auto-tune views: where the points / trials are measured
(one setting for both).

"This machine" (the engine process, the default), "Ray: auto" (the cluster $RAY_ADDRESS names
in the engine's environment, else a private Ray on loopback) or "Ray: address" (a head's
HOST:PORT, or ray://HOST:PORT through the Ray Client). Kept in QSettings (`sweep/cluster`);
the engine's `sweep` request gets it as "cluster" and names what to install when the Ray extra
is missing."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
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


def model_reference(win: Any, what: str = "sweep") -> dict:
    """The open parameters a cluster node opens the model with (the ones the engine opened it
    with; an example by its name); ValueError when they cannot travel."""
    from quantgui.core.cluster import MODEL_PARAMS
    opened = dict(win.engine.model_params or {})
    model = {k: v for k, v in opened.items() if k in MODEL_PARAMS and v not in (None, "")}
    if isinstance(model.get("data"), dict):  # nodes receive files, not a DataSpec's folder
        raise ValueError(f"A cluster {what} cannot send data chosen in the Data dialog yet: "
                         f"choose This machine, or open the model without that data")
    model["source"] = opened.get("source") or win.loaded.info.source
    return model


class _Hub(QObject):
    """Tells every ClusterChoice (the Sweep view's, the Auto-tune view's) that one of them
    stored a new value in its settings, so every view on those settings shows the one setting."""
    stored = Signal(object, str)


_HUB: Any = None


def _hub() -> _Hub:
    global _HUB
    if _HUB is None:
        _HUB = _Hub()
    return _HUB


class ClusterChoice(QWidget):
    changed = Signal(str)   # the stored value: "local", "auto" or the address

    def __init__(self, settings: Any, parent: Any = None, name: str = "sweep") -> None:
        super().__init__(parent)
        self.settings = settings
        self.combo = QComboBox()
        self.combo.setObjectName(f"{name}Cluster")
        for text, key in CHOICES:
            self.combo.addItem(text, key)
        self.address = QLineEdit()
        self.address.setObjectName(f"{name}ClusterAddress")
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
        self._show(settings.cluster())
        self.combo.currentIndexChanged.connect(self._store)
        self.address.editingFinished.connect(self._store)
        _hub().stored.connect(self._on_stored)

    def _show(self, stored: str) -> None:
        key = stored if stored in (LOCAL, AUTO) else ADDRESS
        if key == ADDRESS:
            self.address.setText(stored)
        self.combo.setCurrentIndex(self.combo.findData(key))
        self._sync()

    def _on_stored(self, settings: Any, value: str) -> None:
        if settings is not self.settings:
            return
        if self.combo.currentData() != ADDRESS or value in (LOCAL, AUTO) \
                or value != self.address.text().strip():
            self.combo.blockSignals(True)
            self._show(value)
            self.combo.blockSignals(False)

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
        _hub().stored.emit(self.settings, key)

    def value(self) -> str:
        """The engine's "cluster" parameter; ValueError for an address that is not one."""
        key = self.combo.currentData()
        return check_address(self.address.text()) if key == ADDRESS else key
