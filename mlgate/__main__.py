"""``python -m mlgate``: the command line, the same code path as the action (:func:`mlgate.cli.main`)."""

from mlgate.cli import main

if __name__ == "__main__":  # worker processes import this file again (multiprocessing)
    raise SystemExit(main())
