"""`python -m heroforge ...`: the CLI, also the entry point torchrun starts on every GPU."""

from heroforge.commands import main

main()
