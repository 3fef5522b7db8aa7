"""Files in, files out: photos, pixel arrays, box files, paths, one-line error messages.

- ``images``: a photo file or upload → :class:`~rpn_viz.io.images.LoadedImage` (checked size, EXIF turned).
- ``pixels``: any Pillow image mode to 8-bit RGB (used by ``images``).
- ``adaptations``: what ``images`` changed in a photo (first frame, mode, EXIF turn, downscale), as facts;
  the app words them.
- ``box_files``: ground-truth boxes from COCO JSON, Pascal VOC XML and the bundled set's JSON.
- ``paths``: where the app, its assets and the shared weights folder are.
- ``errors``: :class:`~rpn_viz.io.errors.UserError` and ``describe_error``, the one error formatter.

The bottom layer: imports nothing else from ``rpn_viz`` (no torch either), so every other
sub-package may import it.
"""
