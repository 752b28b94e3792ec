"""``python -m engine`` is the ``sop`` command."""

import sys

from engine.cli.main import main

sys.exit(main())
