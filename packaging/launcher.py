"""Entry point of the frozen app: the same ``workstation`` command as the console script."""
import multiprocessing
import sys

from workstation.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
