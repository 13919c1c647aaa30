import sys

from facelocal.cli import main

sys.exit(main())
