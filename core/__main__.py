"""``python -m simrun``. Guarded: backends that spawn workers (vLLM) re-import the main module in each child."""

from .cli import main

if __name__ == "__main__":
    main()
