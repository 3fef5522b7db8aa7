"""The command line: ``rpn-viz`` (= ``python -m rpn_viz``) and its sub-commands, one module each.

- ``cli``: the one argparse parser and :func:`~rpn_viz.commands.cli.console`; ``SUBCOMMANDS`` lists them.
- ``run`` (``rpn-viz IMAGE``), ``learn``, ``train``, ``evaluate``, ``slides``, ``app``: a sub-command each.
- ``commandline``: what they share: the one-line parser, exit codes, the model and filter options, the
  download progress line on stderr (its words, ``progress_text``, are the app's progress bar's too).

The top layer: imports any sub-package below (and ``ui``'s drawing code for the slides, which
imports no Streamlit); no layer below imports it back (the top-level ``rpn_viz.load_model``, the
Python API, shows ``commandline``'s progress line).
"""
