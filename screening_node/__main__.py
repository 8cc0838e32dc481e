import sys

from screening_node.cli import main

sys.exit(main())
