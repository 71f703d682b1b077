import sys

from stkd.cli import main

sys.exit(main())
