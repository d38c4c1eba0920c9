"""``python -m upstream --port P [--capacity C] [--fault none|500|reset|hang]``: the upstream service."""

import sys

from upstream.service import main

sys.exit(main())
