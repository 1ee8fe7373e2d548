"""Allows `python3 -m pydist.compare`."""
import sys

from pydist.compare.cli import main

sys.exit(main(sys.argv[1:]))
