import sys

from lds.cli import main

sys.exit(main())
