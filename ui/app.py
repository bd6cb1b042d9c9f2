"""``subtitler-gui [FILE]``: start the window, optionally opening a media file."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from subtitler import __version__

    parser = argparse.ArgumentParser(prog="subtitler-gui", description="The subtitler window.")
    parser.add_argument("file", nargs="?", help="a video or audio file to open")
    parser.add_argument("--version", action="version", version=f"subtitler {__version__}")
    args = parser.parse_args(argv)

    from subtitler.pipeline import prepare_process

    prepare_process()  # the fast BLAS loads before anything imports MLX
    from PySide6.QtWidgets import QApplication

    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("subtitler")
    app.setOrganizationName("subtitler")
    window = MainWindow()
    window.show()
    if args.file:
        window.open_media(args.file)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
