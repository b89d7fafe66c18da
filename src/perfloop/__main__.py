"""``python -m perfloop``: the same as the ``perfloop`` command."""

from .cli.app import main

if __name__ == "__main__":
    main()
