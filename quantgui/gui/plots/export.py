"""PNG and SVG export of pyqtgraph plots.

pyqtgraph's SVGExporter fails on Qt 6.12 (closed paths), so SVG goes through QSvgGenerator and
`scene().render`. PNG uses the same route onto a 2x image, so both files look like the screen.
A widget that was never shown lays itself out at 640x480 whatever its size says, so the window
is shown (offscreen is fine) for the export when it is not visible yet.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRect, QRectF, QSize
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QApplication, QWidget

PNG_SCALE = 2


def suffixed(path: str | Path, name: str) -> Path:
    """'out.png' + 'size' -> 'out-size.png'."""
    p = Path(path)
    return p.with_name(f"{p.stem}-{name}{p.suffix}")


@contextmanager
def laid_out(widget: QWidget) -> Iterator[None]:
    """Make sure `widget` has its real on-screen geometry while exporting."""
    window = widget.window()
    shown_here = not window.isVisible()
    if shown_here:
        window.show()
    QApplication.processEvents()
    try:
        yield
    finally:
        if shown_here:
            window.hide()


def _source(plot: pg.PlotWidget) -> QRectF:
    return plot.mapToScene(plot.viewport().rect()).boundingRect()


def _paint(plot: pg.PlotWidget, painter: QPainter, width: int, height: int,
           background: Optional[str]) -> None:
    # scene.render() leaves out the view's background brush: paint it first.
    bg = QColor(background) if background else plot.backgroundBrush().color()
    painter.fillRect(QRectF(0, 0, width, height), bg)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
    plot.scene().render(painter, QRectF(0, 0, width, height), _source(plot))


def export_png(plot: pg.PlotWidget, path: str | Path, background: Optional[str] = None) -> Path:
    path = Path(path)
    with laid_out(plot):
        w, h = max(1, plot.width()), max(1, plot.height())
        image = QImage(w * PNG_SCALE, h * PNG_SCALE, QImage.Format.Format_ARGB32)
        image.setDevicePixelRatio(PNG_SCALE)
        painter = QPainter(image)
        try:
            _paint(plot, painter, w, h, background)
        finally:
            painter.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    ok = image.save(buf, "PNG")
    buf.close()
    if not ok:
        raise OSError(f"could not encode the plot as PNG for {path}")
    return _write(path, bytes(data.data()))


def _write(path: Path, data: bytes) -> Path:
    """Whole or not at all; a folder problem or a full disk is a UserError with one line."""
    from quantgui.core import write_bytes_atomic
    return write_bytes_atomic(path, data)


def export_svg(plot: pg.PlotWidget, path: str | Path, background: Optional[str] = None,
               title: str = "QuantGUI plot") -> Path:
    path = Path(path)
    with laid_out(plot):
        w, h = max(1, plot.width()), max(1, plot.height())
        gen = QSvgGenerator()
        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        gen.setOutputDevice(buf)
        # pyqtgraph axes replay cached QPictures, which QPainter rescales by the ratio of the
        # device's DPI to the screen's: at the generator's default 72 dpi the axes shrink to
        # 3/4 while the data does not. Matching the screen's DPI keeps them aligned.
        gen.setResolution(int(round(plot.logicalDpiX())))
        gen.setSize(QSize(w, h))
        gen.setViewBox(QRect(0, 0, w, h))
        gen.setTitle(title)
        gen.setDescription("Exported by QuantGUI")
        painter = QPainter()
        if not painter.begin(gen):
            raise OSError(f"could not write {path}")
        try:
            _paint(plot, painter, w, h, background)
        finally:
            painter.end()
        buf.close()
    if data.isEmpty():
        raise OSError(f"could not draw the plot as SVG for {path}")
    return _write(path, bytes(data.data()))
