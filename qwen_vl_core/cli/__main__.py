"""``python -m qwen_vl_core.cli``: the ``qwen-vl`` command."""

from . import main

raise SystemExit(main())
