from subtitler.cli import main

raise SystemExit(main())
