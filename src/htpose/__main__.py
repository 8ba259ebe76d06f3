import sys

from htpose.cli import main

sys.exit(main())
