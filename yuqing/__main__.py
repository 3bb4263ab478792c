"""`python -m yuqing`: the same as the `yuqing` command."""
import sys

from yuqing.cli import main

sys.exit(main())
