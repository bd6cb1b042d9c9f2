"""Entry point of the packaged app: the CLI for its commands, the window otherwise."""

import sys

CLI = {"transcribe", "convert", "check", "doctor", "--version", "-h", "--help"}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in CLI:
        from subtitler.engine import runtime

        runtime.prepare()  # the fast BLAS before MLX
        from subtitler.cli import main as cli

        return cli()
    from ui.app import main as gui

    return gui()


if __name__ == "__main__":
    raise SystemExit(main())
