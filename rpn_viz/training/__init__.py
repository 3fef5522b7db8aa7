"""Training the paper's RPN head: a session, its settings and results, examples, box-file sets.

- ``session``: :class:`~rpn_viz.training.session.TrainingSession`, one visible step at a time (the app's
  Learn page, ``rpn-viz learn``).
- ``config``: what a session starts with (``TrainConfig``, ``load_start``) and reports (``StepResult``, …).
- ``examples``: what one photo (or its mirror image) gives the loss, computed once.
- ``dataset``: a detection set on disk (photos + one box file), checked before training.
- ``train_set``: the recipe that trained the shipped head on the bundled set (``rpn-viz train``).
- ``fairqueue``: first come, first served turns at training on a shared server.

Imports go down to :mod:`rpn_viz.pipeline`, :mod:`rpn_viz.model` and :mod:`rpn_viz.io`; the command
lines that drive these live in :mod:`rpn_viz.commands`.
"""
