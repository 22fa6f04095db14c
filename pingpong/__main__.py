"""``python -m pingpong`` is the ``pingpong`` command."""

import sys

from pingpong.cli import main

sys.exit(main())
