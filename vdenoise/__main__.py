"""`python -m vdenoise`: the command line, also where the `vdenoise` script is not installed."""

from vdenoise.entry import main

main()
