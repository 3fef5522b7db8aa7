"""The command line: ``rpn-viz`` (= ``python -m rpn_viz``) and its sub-commands, one module each.

- ``cli``: the one argparse parser and :func:`~rpn_viz.commands.cli.console`; ``SUBCOMMANDS`` lists them.
- ``run`` (``rpn-viz IMAGE``), ``learn``, ``train``, ``evaluate``, ``slides``, ``app``: a sub-command each.
- ``commandline``: what they share: the one-line parser, exit codes, the model and filter options.

The top layer: imports any sub-package below (and ``ui``'s drawing code for the slides, which
imports no Streamlit); nothing in ``rpn_viz`` imports it back.
"""
