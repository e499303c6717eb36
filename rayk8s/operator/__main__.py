"""``python -m rayk8s.operator [OPTIONS]``: the same as ``rayk8s operator``."""

import sys

from rayk8s.cli import main

if __name__ == "__main__":
    main(["operator", *sys.argv[1:]], prog_name="python -m rayk8s")
