"""Edits on a long film in the real window, offscreen: a generated 10,000-cue SRT is
imported and each kind of edit timed through the same paths a user's keystrokes take
(the table model's setData, the window's actions, the undo stack), with the table
shown so that Qt's view work is counted too.

    QT_QPA_PLATFORM=offscreen python benchmarks/window_edits.py [--cues 10000] [--reps 5]

Prints the median of ``--reps`` of each (ms) and the import time (s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def make_srt(path: Path, n: int) -> Path:
    lines = []
    for i in range(n):
        start = i * 2500
        lines.append(
            f"{i + 1}\n{_t(start)} --> {_t(start + 2000)}\nSubtitle number {i + 1}, with a few words\n"
        )
    path.write_text("\n".join(lines))
    return path


def _t(ms: int) -> str:
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cues", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["SUBTITLER_DATA_DIR"] = tempfile.mkdtemp()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from PySide6.QtWidgets import QApplication

    from subtitler.core.timecode import format_ms
    from ui.main_window import MainWindow
    from ui.table_model import COL_END, COL_TEXT

    app = QApplication.instance() or QApplication([])
    w = MainWindow()
    w.confirm_close = False
    w.resize(1280, 800)
    w.show()
    app.processEvents()
    srt = make_srt(Path(tempfile.mkdtemp()) / "film.srt", args.cues)
    t = time.perf_counter()
    assert w.import_subtitles(str(srt))
    app.processEvents()
    imported = time.perf_counter() - t
    row = args.cues // 2
    w.table.selectRow(row)
    w.table.scrollTo(w.table_model.index(row, 0))
    app.processEvents()

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        app.processEvents()
        return (time.perf_counter() - t0) * 1000

    edits = {
        "end-time edit": lambda k: w.table_model.setData(
            w.table_model.index(row, COL_END), format_ms(row * 2500 + 2100 - k)
        ),
        "text edit": lambda k: w.table_model.setData(w.table_model.index(row, COL_TEXT), f"Changed text {k}"),
        "undo": lambda k: w.undoAction.trigger(),
        "redo": lambda k: w.redoAction.trigger(),
        "split": lambda k: (w.table.selectRow(row), w.split_current(8)),
        "merge": lambda k: (w.table.selectRow(row), w.merge_current()),
        "delete": lambda k: (w.table.selectRow(row), w.delete_selected()),
        "shift all": lambda k: w.shift(100, "all"),
    }
    results = {}
    for name, fn in edits.items():
        results[name] = statistics.median(timed(lambda: fn(k)) for k in range(args.reps))
    print(f"# window edits, {args.cues} cues (median of {args.reps}, ms)\n")
    print(f"- import: {imported:.2f} s")
    for name, ms in results.items():
        print(f"- {name}: {ms:.1f} ms")
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
