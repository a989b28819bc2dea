"""`python -m wsvad` is the same as the `wsvad` command."""

from wsvad.cli import main

main()
