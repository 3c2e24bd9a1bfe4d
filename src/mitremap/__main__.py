"""`python -m mitremap` runs the command line."""

from mitremap.cli import main

main()
