"""``python -m vidrec``: the same as the ``vidrec`` command."""
import sys

from .cli import main

sys.exit(main())
