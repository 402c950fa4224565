"""``python -m qwen_vl_cli``: the ``qwen-vl`` command."""

from . import main

raise SystemExit(main())
