"""Commands that live in modules of their own; see ``EXTRA_COMMANDS`` in :mod:`seqrnn.cli`.

Each module has ``add_parser(sub)`` (argparse only: no torch or numpy at import)
and sets ``func`` on its parser to the function that runs the command.
"""
