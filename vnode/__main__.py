from vnode.cli import main

raise SystemExit(main())
