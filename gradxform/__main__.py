from gradxform.cli import main

raise SystemExit(main())
