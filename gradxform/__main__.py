from gradxform.playground.cli import main

raise SystemExit(main())
