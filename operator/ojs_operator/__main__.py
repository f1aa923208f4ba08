"""`python -m ojs_operator`: the same as the `ojs-nats-operator` console script."""

import sys

from ojs_operator.cli import main

sys.exit(main())
