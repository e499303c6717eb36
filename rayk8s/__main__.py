"""``python -m rayk8s``: the same as the ``rayk8s`` command."""

from rayk8s.cli import main

if __name__ == "__main__":
    main(prog_name="rayk8s")
