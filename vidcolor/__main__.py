"""The ``vidcolor`` program (and ``python -m vidcolor``). Signals are handled before any
library is imported (``vidcolor.stopping``)."""

import sys

from vidcolor import stopping


def main() -> None:
    stopping.while_starting()
    from vidcolor.cli import run

    run(sys.argv[1:])


if __name__ == "__main__":
    main()
