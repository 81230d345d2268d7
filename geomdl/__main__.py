from geomdl.cli import main

raise SystemExit(main())
