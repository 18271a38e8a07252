"""`python -m libinject`: the operator image's entrypoint (libinject.images.operatorimage)."""

from libinject.cli.main import main

raise SystemExit(main())
