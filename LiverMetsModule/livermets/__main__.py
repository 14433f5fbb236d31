from livermets.cli import main

raise SystemExit(main())
